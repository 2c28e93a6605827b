//! `rapport customer import` and `export --csv`, through the built binary,
//! with files written the way spreadsheets write them.

mod common;

use common::Home;

/// A spreadsheet's export: a byte-order mark, semicolons, CRLF, a quoted
/// cell with a line break, German headers and dates.
const SPREADSHEET: &str = "\u{feff}Firma;E-Mail;Kontakt;Kunde seit;Notiz\r\nAcme Ltd;buyer@acme.test;Bea Buyer;31.12.2025;\"Two\nlines\"\r\nGlobex;ops@globex.test;;01.02.2026;\r\n";

const MAP: &str = "Firma=name,E-Mail=email,Kontakt=contact,Kunde seit=acquired";

#[test]
fn a_spreadsheet_imports_once_and_a_bad_row_writes_nothing() {
    let home = Home::init("import");
    let files = Home::new("import-files");
    std::fs::create_dir_all(files.path()).unwrap();
    let write = |name: &str, text: &str| {
        let path = files.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let good = write("good.csv", SPREADSHEET);
    let args = |file: &str| -> Vec<String> {
        [
            "customer",
            "import",
            file,
            "--map",
            MAP,
            "--date-format",
            "%d.%m.%Y",
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let run = |extra: &[&str], file: &str| {
        let mut all: Vec<String> = args(file);
        all.extend(extra.iter().map(|s| (*s).to_owned()));
        all
    };

    // A dry run says what would happen and writes nothing.
    let dry = home.json(&as_refs(&run(&["--dry-run"], &good)));
    assert_eq!(
        (dry["add"].as_u64(), dry["update"].as_u64()),
        (Some(2), Some(0)),
        "{dry}"
    );
    assert_eq!(
        home.json(&["customer", "list"]).as_array().unwrap().len(),
        0
    );

    // One bad row: nothing is written, and the row is named (as a
    // spreadsheet numbers it: the header is row 1).
    let bad = write("bad.csv", &SPREADSHEET.replace("01.02.2026", "32.02.2026"));
    let output = home.run(&as_refs(&args(&bad)));
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("row 3 ") && said.contains("nothing was imported"),
        "{said}"
    );
    assert_eq!(
        home.json(&["customer", "list"]).as_array().unwrap().len(),
        0
    );

    // The good file: two customers, dates and the multi-line cell kept.
    let imported = home.json(&as_refs(&args(&good)));
    assert_eq!(
        (imported["added"].as_u64(), imported["updated"].as_u64()),
        (Some(2), Some(0))
    );
    let list = home.json(&["customer", "list"]);
    let acme = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Acme Ltd")
        .unwrap_or_else(|| panic!("{list}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = home.json(&["customer", "show", &acme]);
    assert_eq!(shown["acquired"], "2025-12-31", "{shown}");
    assert_eq!(shown["contact"], "Bea Buyer");
    assert_eq!(shown["fields"]["Notiz"], "Two\nlines", "{shown}");

    // Again: matched by email, nothing added.
    let again = home.json(&as_refs(&args(&good)));
    assert_eq!(
        (again["added"].as_u64(), again["updated"].as_u64()),
        (Some(0), Some(2))
    );
    assert_eq!(
        home.json(&["customer", "list"]).as_array().unwrap().len(),
        2
    );

    // The export reads back as the same customers.
    let exported = files.path().join("export.csv");
    home.ok(&[
        "customer",
        "export",
        "--csv",
        "--to",
        exported.to_str().unwrap(),
    ]);
    let csv = std::fs::read_to_string(&exported).unwrap();
    assert!(csv.starts_with("id,name,kind,"), "{csv}");
    assert!(csv.contains("buyer@acme.test"), "{csv}");
    let round = home.json(&[
        "customer",
        "import",
        exported.to_str().unwrap(),
        "--map",
        "id=field.old_id",
    ]);
    assert_eq!(
        (round["added"].as_u64(), round["updated"].as_u64()),
        (Some(0), Some(2)),
        "{round}"
    );

    // --skip-bad imports the good rows and names the others.
    let fresh = Home::init("import-skip");
    let skipped = fresh.json(&as_refs(&run(&["--skip-bad"], &bad)));
    assert_eq!(skipped["added"].as_u64(), Some(1), "{skipped}");
    assert_eq!(skipped["refused"][0]["row"].as_u64(), Some(3), "{skipped}");
}

#[test]
fn tasks_import_with_their_customer_by_name_and_match_on_a_key_column() {
    let home = Home::init("import-tasks");
    let acme = home.add(&["customer", "add", "Acme Ltd", "--kind", "client"]);
    let files = Home::new("import-task-files");
    std::fs::create_dir_all(files.path()).unwrap();
    let file = files.path().join("jira.csv");
    std::fs::write(
        &file,
        "Key,Summary,Due date,Company,Priority\nOPS-1,Send the offer,15/01/2026,Acme Ltd,high\nOPS-2,Book the kick-off,,,\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let args = [
        "task",
        "import",
        file,
        "--map",
        "Summary=title,Due date=due",
        "--date-format",
        "%d/%m/%Y",
        "--key",
        "Key",
    ];
    let imported = home.json(&args);
    assert_eq!(imported["added"].as_u64(), Some(2), "{imported}");
    let tasks = home.json(&["task", "list"]).to_string();
    assert!(
        tasks.contains("Send the offer") && tasks.contains("Book the kick-off"),
        "{tasks}"
    );
    let offer = home
        .json(&["task", "list"])
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["title"] == "Send the offer")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = home.json(&["task", "show", &offer]);
    assert_eq!(shown["due"], "2026-01-15", "{shown}");
    assert_eq!(shown["customer"], acme.as_str(), "{shown}");
    assert_eq!(shown["priority"], "high");
    // Again, matched on the Key column: nothing added.
    let again = home.json(&args);
    assert_eq!(
        (again["added"].as_u64(), again["updated"].as_u64()),
        (Some(0), Some(2)),
        "{again}"
    );
}

fn as_refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
