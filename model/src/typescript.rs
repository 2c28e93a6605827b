//! The TypeScript types the web app uses, generated from this crate's
//! types so that the schema has one source. `web/src/generated/model.ts`
//! must equal [`render`]'s output: the test below fails when it does not,
//! and `RAPPORT_BLESS=1 cargo test -p rapport-model typescript` rewrites it.

use std::path::PathBuf;

use ts_rs::TS;

use crate::access::{Access, Level, Role};
use crate::api::*;
use crate::form::{FieldType, FormField, FormInfo, NewForm};
use crate::record::{
    ChecklistItem, Comment, Customer, Priority, Relationship, Requirements, SCHEMA_VERSION, Stage,
    Status, Task, Thread,
};
use crate::workspace::{AuditEvent, Scope};

/// One `export` line per type, in dependency order.
fn declarations() -> Vec<String> {
    macro_rules! decls {
        ($($ty:ty),* $(,)?) => { vec![$(export::<$ty>()),*] };
    }
    decls![
        Role,
        Level,
        Access,
        Customer,
        ChecklistItem,
        Task,
        Requirements,
        Comment,
        Thread,
        FieldType,
        FormField,
        NewForm,
        FormInfo,
        Scope,
        AuditEvent,
        RelayInfo,
        ErrorBody,
        CreateWorkspace,
        WorkspaceSummary,
        WorkspaceList,
        NewDocument,
        AddDocuments,
        DocumentsAdded,
        DocumentEntry,
        DocumentList,
        ShareEntry,
        MemberEntry,
        MemberList,
        Person,
        PeopleList,
        MemberRemoved,
        Share,
        CreateInvite,
        InviteCreated,
        InviteEntry,
        InviteList,
        InviteRevoked,
        Redeem,
        Redeemed,
        AuditLog,
    ]
}

fn export<T: TS>() -> String {
    // JSON numbers are JS numbers: every count and time here fits in 2^53.
    let decl = T::decl().replace("bigint", "number");
    match T::docs() {
        Some(docs) => format!("{}\nexport {decl}\n", docs.trim_end()),
        None => format!("export {decl}\n"),
    }
}

/// The whole generated file.
pub(crate) fn render() -> String {
    let mut out = String::from(
        "// Generated from the Rust crate rapport-model (model/src/typescript.rs).\n\
         // Do not edit: change the Rust types, then run\n\
         // RAPPORT_BLESS=1 cargo test -p rapport-model typescript\n\n\
         /** The root of every record document besides its fields. */\n\
         export type RecordHeader = { schema: number, kind: \"customer\" | \"task\" | \"requirements\" | \"thread\" };\n\n",
    );
    for decl in declarations() {
        out.push_str(&decl);
        out.push('\n');
    }
    out.push_str(
        "/** The values this version knows; documents may hold others, kept as written. */\n",
    );
    out.push_str(&known(
        "RELATIONSHIPS",
        Relationship::KNOWN.iter().map(Relationship::as_str),
    ));
    out.push_str(&known("STAGES", Stage::KNOWN.iter().map(Stage::as_str)));
    out.push_str(&known("STATUSES", Status::KNOWN.iter().map(Status::as_str)));
    out.push_str(&known(
        "PRIORITIES",
        Priority::KNOWN.iter().map(Priority::as_str),
    ));
    out.push_str(&format!(
        "export const SCHEMA_VERSION = {SCHEMA_VERSION};\n"
    ));
    out
}

fn known<'a>(name: &str, values: impl Iterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = values.map(|v| format!("{v:?}")).collect();
    format!("export const {name} = [{}] as const;\n", quoted.join(", "))
}

fn target() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web/src/generated/model.ts")
}

#[test]
fn typescript_types_are_current() {
    let fresh = render();
    let path = target();
    if std::env::var_os("RAPPORT_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{} is not what the Rust types generate; run RAPPORT_BLESS=1 cargo test -p rapport-model typescript",
        path.display()
    );
}
