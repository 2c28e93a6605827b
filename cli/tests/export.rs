//! `rapport export`: a replica's documents as files that read without
//! rapport, through the built binary.

mod common;

use common::Home;

#[test]
fn an_export_holds_every_document_as_automerge_json_and_markdown() {
    let home = Home::init("export");
    let customer = home.add(&["customer", "add", "Acme Ltd", "--kind", "client"]);
    let doc = home.add(&[
        "doc",
        "new",
        "Customer portal",
        "--customer",
        &customer[..6],
    ]);
    home.ok(&["doc", "append", &doc, "Single sign-on is required."]);
    let out = Home::new("export-out");
    let to = out.path().join("acme");
    let to_arg = to.to_str().unwrap();
    let exported = home.json(&["export", "--to", to_arg]);
    assert_eq!(exported["documents"], 2, "{exported}");

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(to.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], "rapport-export");
    let documents = manifest["documents"].as_array().unwrap();
    assert_eq!(documents.len(), 2);
    let customer_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(to.join(format!("{customer}.json"))).unwrap())
            .unwrap();
    assert_eq!(customer_json["name"], "Acme Ltd");
    let markdown = std::fs::read_to_string(to.join(format!("{doc}.md"))).unwrap();
    assert!(markdown.starts_with("# Customer portal"), "{markdown}");
    assert!(
        markdown.contains("Single sign-on is required."),
        "{markdown}"
    );
    let binary = std::fs::read(to.join(format!("{doc}.automerge"))).unwrap();
    assert!(
        binary.len() > 8 && binary[..4] == [0x85, 0x6f, 0x4a, 0x83],
        "an automerge file"
    );

    // Never into a folder that holds something.
    home.fails(&["export", "--to", to_arg], "not an empty folder");
    assert!(!out.path().join("acme.partial").exists());
}
