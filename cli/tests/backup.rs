//! `rapport backup`: a replica copied to a file and put back, through the
//! built binary.

mod common;

use common::Home;

#[test]
fn a_replica_backup_puts_back_what_the_replica_held() {
    let home = Home::init("backup");
    let kept = home.add(&["customer", "add", "Acme Ltd", "--kind", "client"]);
    let files = Home::new("backup-files");
    std::fs::create_dir_all(files.path()).unwrap();
    let to = files.path().join("replica.backup");
    let to = to.to_str().unwrap();
    let written = home.json(&["backup", "--to", to]);
    assert!(written["bytes"].as_u64().unwrap() > 0, "{written}");
    let later = home.add(&["customer", "add", "Globex", "--kind", "customer"]);

    home.fails(&["backup", "--restore-from", to], "--force");
    home.ok(&["backup", "--restore-from", to, "--force"]);
    let listed = home.json(&["customer", "list"]).to_string();
    assert!(listed.contains(&kept), "{listed}");
    assert!(!listed.contains(&later), "{listed}");

    // A target that cannot be written leaves nothing behind.
    let missing = files.path().join("no-such-folder").join("replica.backup");
    home.fails(
        &["backup", "--to", missing.to_str().unwrap()],
        "cannot write the backup",
    );
    assert_eq!(std::fs::read_dir(files.path()).unwrap().count(), 1);
    // What is not a replica is not restored.
    let junk = files.path().join("junk");
    std::fs::write(&junk, "junk").unwrap();
    home.fails(
        &[
            "backup",
            "--restore-from",
            junk.to_str().unwrap(),
            "--force",
        ],
        "not a replica backup",
    );
    assert_eq!(home.json(&["customer", "list"]).to_string(), listed);
}
