//! Workspaces, invites, joining, members, sharing and the audit log: calls
//! to the relay's workspace API.

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use rapport_client::api::{InviteLink, InviteRequest, Level, RelayApi, Role};
use rapport_client::relay_url::{RelayList, RelayUrl};
use rapport_protocol::ids::{DocumentId, PublicKey};
use serde_json::{Value, json};

use crate::context::{Context, WorkspaceEntry, resolve};

#[derive(Debug, Subcommand)]
pub(crate) enum WorkspaceCommand {
    /// Create a workspace on a relay; you own it.
    #[command(
        after_help = "Example:\n  rapport workspace create \"Acme projects\" --relay https://relay.example"
    )]
    Create {
        name: String,
        /// The relay's address: https://HOST[:PORT], or its ws:// or wss://
        /// URL, with or without /sync.
        #[arg(long)]
        relay: String,
    },
    /// The workspaces of this home; with --relay, first learn every
    /// workspace your key belongs to on that relay (after `rapport init
    /// --import` of a key used elsewhere).
    #[command(
        after_help = "Examples:\n  rapport workspace list --json\n  rapport workspace list --relay https://relay.example"
    )]
    List {
        /// Ask this relay which workspaces your key is a member of.
        #[arg(long)]
        relay: Option<String>,
    },
    /// Make another workspace the current one.
    #[command(after_help = "Example:\n  rapport workspace use ws-4xQ")]
    Use {
        /// Its id or a unique prefix (or its name).
        workspace: String,
    },
    /// Replace the relay addresses of the current workspace on this
    /// replica: one, or several relays of one cluster (`rapport-server
    /// --cluster`), which all serve the workspace.
    ///
    /// `rapport sync` tries them in turn, starting from the one that last
    /// worked, and moves on after a failed connection or a relay that
    /// cannot store changes. Only this replica's list changes; other
    /// members keep theirs.
    #[command(after_help = SET_RELAY_HELP)]
    SetRelay {
        /// The relay addresses, separated by commas: https://HOST[:PORT],
        /// or ws:// or wss:// URLs, with or without /sync.
        #[arg(value_name = "URL[,URL…]")]
        relays: String,
    },
}

const SET_RELAY_HELP: &str = "Examples:
  rapport workspace set-relay https://relay-a.example,https://relay-b.example
  rapport workspace set-relay https://relay.example     # back to one

Each address is checked as --relay is: a relay that answers must be this
workspace's relay (the same relay id); one that does not answer now is
kept, with a warning. On any error nothing changes.";

#[derive(Debug, Subcommand)]
pub(crate) enum InviteCommand {
    /// Create an invite and print its link (admins).
    #[command(
        after_help = "Examples:\n  rapport invite create --role staff --expires 7d\n  rapport invite create --role client --doc 5Hq --access comment --uses 1"
    )]
    Create {
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// A document the invite grants (repeat, with one --access each);
        /// none for the whole workspace.
        #[arg(long = "doc")]
        docs: Vec<String>,
        /// read, comment or write, for each --doc (or, for a client invited to
        /// the whole workspace, for every document).
        #[arg(long = "access", value_parser = parse_level)]
        access: Vec<Level>,
        /// How long the link works: 30m, 12h, 7d.
        #[arg(long, default_value = "7d", value_parser = parse_duration)]
        expires: u64,
        /// How many people may use it.
        #[arg(long, default_value_t = 1)]
        uses: u32,
    },
    /// The workspace's invites (admins).
    #[command(after_help = "Example:\n  rapport invite list")]
    List,
    /// Revoke an invite before it is used (admins).
    #[command(after_help = "Example:\n  rapport invite revoke inv-8Zk")]
    Revoke { invite: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum MemberCommand {
    /// The workspace's members.
    #[command(after_help = "Example:\n  rapport member list --json")]
    List,
    /// Remove a member (admins): their open connections close at once; what
    /// their device already holds stays there.
    #[command(after_help = "Example:\n  rapport member remove 3xPQmrvp9ntrQJMQ")]
    Remove { key: String },
    /// Change a member's role (admins): client, staff or admin. A member
    /// given less sees less at once; the owner keeps their role.
    #[command(
        after_help = "Examples:\n  rapport member role 3xPQ staff\n  rapport member role 3xPQ client   # sees only what is shared with them, from now on"
    )]
    Role {
        /// The member's key or a unique prefix.
        key: String,
        /// client, staff or admin.
        #[arg(value_parser = parse_role)]
        role: Role,
    },
}

pub(crate) fn run_workspace(ctx: &Context, command: WorkspaceCommand) -> Result<()> {
    match command {
        WorkspaceCommand::Create { name, relay } => create(ctx, &name, &relay),
        WorkspaceCommand::List { relay } => {
            if let Some(relay) = relay {
                learn(ctx, &relay)?;
            }
            list(ctx)
        }
        WorkspaceCommand::Use { workspace } => use_workspace(ctx, &workspace),
        WorkspaceCommand::SetRelay { relays } => set_relay(ctx, &relays),
    }
}

fn create(ctx: &Context, name: &str, relay: &str) -> Result<()> {
    let repo = ctx.repo()?;
    let (relay, relay_id) = locate(relay)?;
    let entry = WorkspaceEntry {
        id: String::new(),
        name: name.to_owned(),
        relays: RelayList::from(relay),
        relay_id,
        role: Role::Owner,
        pending: Vec::new(),
        names: Default::default(),
    };
    let api = entry.api(&repo)?.with_name(&ctx.settings()?.name);
    let id = api.create_workspace(name)?;
    let mut settings = ctx.settings()?;
    let mut entry = entry;
    entry.id = id.clone();
    // Records made before any workspace existed join this one.
    entry.pending = repo
        .document_ids()?
        .into_iter()
        .map(|d| (d, thread_of(&repo, d)))
        .collect();
    settings.workspaces.push(entry);
    settings.current = Some(id.clone());
    ctx.save_settings(&settings)?;
    ctx.print(
        format!("created workspace {name} ({id}); it is now the current one"),
        json!({ "id": id, "name": name }),
    );
    Ok(())
}

/// The relay at the address a person typed: the address to keep (its
/// public one, when its operator set one) and its id.
fn locate(typed: &str) -> Result<(RelayUrl, String)> {
    let relay: RelayUrl = typed.parse()?;
    let info = RelayApi::info(&relay)
        .with_context(|| format!("is a rapport relay running at {relay}?"))?;
    Ok((RelayApi::public_address(&relay, &info), info.relay_id))
}

/// The record a comment thread belongs to, from the index.
fn thread_of(repo: &rapport_client::Repo, id: DocumentId) -> Option<DocumentId> {
    repo.index()
        .ok()?
        .into_iter()
        .find(|(d, _)| *d == id)
        .and_then(|(_, e)| e.record.as_deref().and_then(|r| r.parse().ok()))
}

/// Remembers every workspace this key belongs to on `relay`.
fn learn(ctx: &Context, relay: &str) -> Result<()> {
    let repo = ctx.repo()?;
    let (relay, relay_id) = locate(relay)?;
    let mut entry = WorkspaceEntry {
        id: String::new(),
        name: String::new(),
        relays: RelayList::from(relay),
        relay_id,
        role: Role::Client,
        pending: Vec::new(),
        names: Default::default(),
    };
    let found = entry.api(&repo)?.workspaces()?;
    let mut settings = ctx.settings()?;
    for workspace in found {
        if settings.workspaces.iter().any(|w| w.id == workspace.id) {
            continue;
        }
        entry.id = workspace.id;
        entry.name = workspace.name;
        entry.role = workspace.role;
        settings.workspaces.push(entry.clone());
    }
    if settings.current.is_none() {
        settings.current = settings.workspaces.first().map(|w| w.id.clone());
    }
    ctx.save_settings(&settings)
}

fn list(ctx: &Context) -> Result<()> {
    let settings = ctx.settings()?;
    let mut human = String::new();
    for w in &settings.workspaces {
        let mark = if settings.current.as_deref() == Some(w.id.as_str()) {
            "*"
        } else {
            " "
        };
        human.push_str(&format!(
            "{mark} {:<24} {:<30} {:<7} {}\n",
            w.id,
            w.name,
            format!("{:?}", w.role).to_lowercase(),
            w.relays
        ));
    }
    if human.is_empty() {
        human =
            "no workspaces: rapport workspace create NAME --relay URL, or rapport join LINK".into();
    }
    let list: Vec<Value> = settings
        .workspaces
        .iter()
        .map(|w| json!({ "id": w.id, "name": w.name, "role": w.role, "relay": w.relays.first().to_string(), "relays": w.relays, "current": settings.current.as_deref() == Some(w.id.as_str()) }))
        .collect();
    ctx.print(human, Value::Array(list));
    Ok(())
}

fn use_workspace(ctx: &Context, wanted: &str) -> Result<()> {
    let mut settings = ctx.settings()?;
    let matches: Vec<&WorkspaceEntry> = settings
        .workspaces
        .iter()
        .filter(|w| w.id.starts_with(wanted) || w.name == wanted)
        .collect();
    let id = match matches.as_slice() {
        [one] => one.id.clone(),
        [] => bail!("no workspace `{wanted}` in this home; `rapport workspace list` shows them"),
        _ => bail!("`{wanted}` matches several workspaces; type more of the id"),
    };
    settings.current = Some(id.clone());
    ctx.save_settings(&settings)?;
    ctx.print(format!("now in {id}"), json!({ "current": id }));
    Ok(())
}

/// Replaces the current workspace's relay addresses, each parsed and, if
/// it answers, checked to be this workspace's relay.
fn set_relay(ctx: &Context, typed: &str) -> Result<()> {
    let relays: RelayList = typed.parse()?;
    let mut settings = ctx.settings()?;
    let current = ctx.workspace()?;
    let mut silent = Vec::new();
    for url in relays.iter() {
        match RelayApi::info(url) {
            Ok(info) if info.relay_id == current.relay_id => {}
            Ok(info) => bail!(
                "{url} is relay {}, not this workspace's relay {}: it is no relay of the same cluster; nothing changed",
                info.relay_id,
                current.relay_id
            ),
            Err(e) => silent.push((url.clone(), e)),
        }
    }
    for (url, e) in &silent {
        eprintln!("warning: {url} does not answer now ({e}); kept in the list");
    }
    let entry = settings
        .workspaces
        .iter_mut()
        .find(|w| w.id == current.id)
        .context("the current workspace left this home meanwhile")?;
    entry.relays = relays.clone();
    ctx.save_settings(&settings)?;
    let urls: Vec<String> = relays.iter().map(ToString::to_string).collect();
    ctx.print(
        format!(
            "{} ({}) syncs through {}",
            current.name,
            current.id,
            urls.join(", ")
        ),
        json!({ "workspace": current.id, "relays": relays, "silent": silent.iter().map(|(url, _)| url.to_string()).collect::<Vec<_>>() }),
    );
    Ok(())
}

pub(crate) fn run_invite(ctx: &Context, command: InviteCommand) -> Result<()> {
    let (api, workspace) = ctx.api()?;
    match command {
        InviteCommand::Create {
            role,
            docs,
            access,
            expires,
            uses,
        } => {
            if role == Role::Owner {
                bail!("an invite cannot make an owner; use --role admin");
            }
            let repo = ctx.repo()?;
            let known = repo.document_ids()?;
            let documents = if docs.is_empty() {
                Vec::new()
            } else {
                if access.len() != docs.len() {
                    bail!("give one --access (read, comment or write) for each --doc");
                }
                docs.iter()
                    .zip(&access)
                    .map(|(doc, level)| {
                        Ok((resolve(doc, known.iter().copied(), "document")?, *level))
                    })
                    .collect::<Result<Vec<_>>>()?
            };
            let level = if docs.is_empty() {
                access.first().copied()
            } else {
                None
            };
            let link = api.create_invite(
                &workspace.id,
                &InviteRequest {
                    role,
                    documents,
                    level,
                    expires_in_secs: expires,
                    uses,
                },
            )?;
            ctx.print(
                format!("{link}\n(send it to the person; it works {uses} time(s), for {})", human_duration(expires)),
                json!({ "link": link.to_string(), "workspace": workspace.id, "role": role, "uses": uses, "expires_in_secs": expires }),
            );
        }
        InviteCommand::List => {
            let invites = api.invites(&workspace.id)?;
            let human: String = invites
                .iter()
                .map(|i| {
                    format!(
                        "{:<16} {:<7} uses {}/{}{}\n",
                        i.id,
                        role_name(i.role),
                        i.uses,
                        i.max_uses,
                        if i.revoked { "  revoked" } else { "" }
                    )
                })
                .collect();
            ctx.print(
                if human.is_empty() {
                    "no invites".into()
                } else {
                    human
                },
                serde_json::to_value(&invites)?,
            );
        }
        InviteCommand::Revoke { invite } => {
            api.revoke_invite(&workspace.id, &invite)?;
            ctx.print(format!("revoked {invite}"), json!({ "revoked": invite }));
        }
    }
    Ok(())
}

pub(crate) fn join(ctx: &Context, link: &str) -> Result<()> {
    let link: InviteLink = link.parse()?;
    let repo = ctx.repo()?;
    let info = RelayApi::info(&link.relay)
        .with_context(|| format!("cannot reach the relay of this link ({})", link.relay))?;
    let relay_id = info.relay_id.clone();
    let mut entry = WorkspaceEntry {
        id: link.workspace.clone(),
        name: link.workspace.clone(),
        relays: RelayList::from(RelayApi::public_address(&link.relay, &info)),
        relay_id,
        role: Role::Client,
        pending: Vec::new(),
        names: Default::default(),
    };
    let api = entry.api(&repo)?.with_name(&ctx.settings()?.name);
    entry.role = api.redeem(&link)?;
    if let Some(joined) = api.workspaces()?.into_iter().find(|w| w.id == entry.id) {
        entry.name = joined.name;
    }
    let mut settings = ctx.settings()?;
    settings.workspaces.retain(|w| w.id != entry.id);
    settings.current = Some(entry.id.clone());
    let (id, name, role) = (entry.id.clone(), entry.name.clone(), entry.role);
    settings.workspaces.push(entry);
    ctx.save_settings(&settings)?;
    ctx.print(
        format!(
            "joined {name} ({id}) as {}; run `rapport sync` to fetch what is shared with you",
            format!("{role:?}").to_lowercase()
        ),
        json!({ "workspace": id, "name": name, "role": role }),
    );
    Ok(())
}

pub(crate) fn run_member(ctx: &Context, command: MemberCommand) -> Result<()> {
    let (api, workspace) = ctx.api()?;
    match command {
        MemberCommand::List => {
            let members = api.members(&workspace.id)?;
            let human: String = members
                .iter()
                .map(|m| {
                    format!(
                        "{:<46} {:<7} {}\n",
                        m.key.to_string(),
                        role_name(m.role),
                        m.name.as_deref().unwrap_or_default()
                    )
                })
                .collect();
            ctx.print(human, serde_json::to_value(&members)?);
        }
        MemberCommand::Remove { key } => {
            let key = member_key(&api, &workspace, &key)?;
            api.remove_member(&workspace.id, &key)?;
            ctx.print(
                format!("removed {key}; their connections are closed, and what their device already holds stays there"),
                json!({ "removed": key.to_string() }),
            );
        }
        MemberCommand::Role { key, role } => {
            let key = member_key(&api, &workspace, &key)?;
            api.set_role(&workspace.id, &key, role)?;
            let role_name = format!("{role:?}").to_lowercase();
            ctx.print(
                format!("{key} is now {role_name}"),
                json!({ "member": key.to_string(), "role": role_name }),
            );
        }
    }
    Ok(())
}

/// A member's key from a unique prefix.
pub(crate) fn member_key(
    api: &RelayApi,
    workspace: &WorkspaceEntry,
    prefix: &str,
) -> Result<PublicKey> {
    if let Ok(key) = prefix.parse::<PublicKey>() {
        return Ok(key);
    }
    let keys: Vec<PublicKey> = api
        .members(&workspace.id)?
        .into_iter()
        .map(|m| m.key)
        .filter(|k| k.to_string().starts_with(prefix))
        .collect();
    match keys.as_slice() {
        [one] => Ok(*one),
        [] => bail!("no member whose key starts `{prefix}`; `rapport member list` shows them"),
        _ => bail!("`{prefix}` matches several members; type more of the key"),
    }
}

pub(crate) fn audit(ctx: &Context, member: Option<&str>, document: Option<&str>) -> Result<()> {
    let (api, workspace) = ctx.api()?;
    let member = member
        .map(|m| member_key(&api, &workspace, m))
        .transpose()?;
    let document: Option<DocumentId> = match document {
        Some(d) => Some(resolve(d, ctx.repo()?.document_ids()?, "document")?),
        None => None,
    };
    let events = api.audit(&workspace.id, member.as_ref(), document)?;
    let human: String = events
        .iter()
        .map(|e| {
            let short = |text: String| text.chars().take(10).collect::<String>();
            format!(
                "{:>13}  {:<18} by {:<12} {}{}{}\n",
                e.at,
                e.event,
                e.by.map_or_else(|| "-".to_owned(), |k| short(k.to_string())),
                e.member
                    .map(|m| format!("member {} ", short(m.to_string())))
                    .unwrap_or_default(),
                e.document
                    .map(|d| format!("document {d} "))
                    .unwrap_or_default(),
                e.detail,
            )
        })
        .collect();
    ctx.print(human, serde_json::to_value(&events)?);
    Ok(())
}

/// A role as people write it.
fn role_name(role: Role) -> String {
    serde_json::to_value(role)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub(crate) fn parse_role(text: &str) -> Result<Role, String> {
    match text {
        "client" => Ok(Role::Client),
        "staff" => Ok(Role::Staff),
        "admin" => Ok(Role::Admin),
        other => Err(format!(
            "`{other}` is not a role: use staff, client or admin"
        )),
    }
}

pub(crate) fn parse_level(text: &str) -> Result<Level, String> {
    match text {
        "read" => Ok(Level::Read),
        "comment" => Ok(Level::Comment),
        "write" => Ok(Level::Write),
        other => Err(format!(
            "`{other}` is not an access level: use read, comment or write"
        )),
    }
}

/// `30m`, `12h`, `7d` (or plain seconds) → seconds.
pub(crate) fn parse_duration(text: &str) -> Result<u64, String> {
    let bad = || format!("`{text}` is not a duration: use 30m, 12h or 7d");
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number.parse().map_err(|_| bad())?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(factor).filter(|s| *s > 0).ok_or_else(bad)
}

fn human_duration(secs: u64) -> String {
    match secs {
        s if s % 86_400 == 0 => format!("{} day(s)", s / 86_400),
        s if s % 3_600 == 0 => format!("{} hour(s)", s / 3_600),
        s => format!("{} minute(s)", s.div_ceil(60)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_refuse_nonsense() {
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert_eq!(parse_duration("30m"), Ok(1_800));
        assert_eq!(parse_duration("90"), Ok(90));
        for bad in ["", "7w", "d", "0d", "-1h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roles_and_levels_parse() {
        assert_eq!(parse_role("staff"), Ok(Role::Staff));
        assert!(parse_role("owner").is_err());
        assert_eq!(parse_level("comment"), Ok(Level::Comment));
        assert!(parse_level("admin").is_err());
    }
}
