//! Answers to outsiders say nothing about which ids exist.

use anyhow::{Result, ensure};
use rapport_client::api::{InviteRequest, Level, Role};
use rapport_protocol::ids::DocumentId;
use rapport_tests::peer::key;
use rapport_tests::relay::{TempDir, TestRelay};

use super::{blocking, person, refusal};

#[tokio::test(flavor = "multi_thread")]
async fn answers_to_outsiders_say_nothing_about_which_ids_exist() -> Result<()> {
    let dir = TempDir::new("attack-oracles");
    let relay = TestRelay::start(dir.path()).await?;
    let mut dirs = Vec::new();
    let owner_api = person(&relay, &key(1), &mut dirs)?;
    let ws = blocking(|| owner_api.create_workspace("Acme"))?;
    let listed = DocumentId::from_bytes([51; 16]);
    blocking(|| owner_api.add_documents(&ws, &[(listed, None)]))?;
    let outsider = person(&relay, &key(2), &mut dirs)?;

    // A workspace that exists and one that does not.
    let real = refusal(blocking(|| outsider.members(&ws)))?;
    let fake = refusal(blocking(|| outsider.members("ws-doesnotexist")))?;
    ensure!(real == fake, "{real:?} vs {fake:?}");
    let real = refusal(blocking(|| outsider.invites(&ws)))?;
    let fake = refusal(blocking(|| outsider.invites("ws-doesnotexist")))?;
    ensure!(real == fake, "{real:?} vs {fake:?}");

    // Redeeming: a real workspace with a wrong secret, and no workspace.
    let forged = |workspace: &str| {
        format!(
            "{}/join#{workspace}.notthesecret",
            relay
                .url()
                .replace("ws://", "http://")
                .trim_end_matches("/sync")
        )
        .parse::<rapport_client::api::InviteLink>()
    };
    let real = refusal(blocking(|| outsider.redeem(&forged(&ws)?)))?;
    let fake = refusal(blocking(|| outsider.redeem(&forged("ws-doesnotexist")?)))?;
    ensure!(real == fake, "{real:?} vs {fake:?}");

    // A client adding a document of another workspace, or an unknown one.
    let other_ws = blocking(|| outsider.create_workspace("Elsewhere"))?;
    let elsewhere = DocumentId::from_bytes([52; 16]);
    blocking(|| outsider.add_documents(&other_ws, &[(elsewhere, None)]))?;
    let link = blocking(|| {
        owner_api.create_invite(
            &ws,
            &InviteRequest {
                role: Role::Client,
                documents: vec![(listed, Level::Comment)],
                level: None,
                expires_in_secs: 600,
                uses: 1,
            },
        )
    })?;
    blocking(|| outsider.redeem(&link))?;
    let real = refusal(blocking(|| {
        outsider.add_documents(&ws, &[(elsewhere, None)])
    }))?;
    let fake = refusal(blocking(|| {
        outsider.add_documents(&ws, &[(DocumentId::from_bytes([53; 16]), None)])
    }))?;
    ensure!(real == fake, "{real:?} vs {fake:?}");
    Ok(())
}
