//! What intake forms refuse, over real sockets: bad input gets its 4xx, a
//! closed form takes nothing, only admins manage forms, and a flood from
//! one address is cut off after its burst. None of it writes anything.
//! (What forms accept is `forms.rs`; the harness is
//! `rapport_tests::forms`.)

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use rapport_client::api::RelayApi;
use rapport_server::FormLimits;
use rapport_tests::forms::{
    HOME, PATIENCE, World, blocking, generous, good_submission, http, support_form,
};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_its_4xx_and_writes_nothing() -> Result<()> {
    let world = World::new("bad", generous()).await?;
    let form = world.create_form(&support_form())?;
    let before = world.documents()?;
    let with = |changes: Value| {
        let mut body = good_submission();
        for (k, v) in changes.as_object().into_iter().flatten() {
            match v {
                Value::Null => {
                    if let Some(map) = body.as_object_mut() {
                        map.remove(k);
                    }
                }
                v => body[k] = v.clone(),
            }
        }
        body
    };

    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "missing required field",
            with(json!({ "name": null })),
            "name",
            "is required",
        ),
        (
            "empty required field",
            with(json!({ "problem": "  " })),
            "problem",
            "is required",
        ),
        (
            "email without @",
            with(json!({ "email": "buyer.acme.test" })),
            "email",
            "not an email",
        ),
        (
            "number that is not one",
            with(json!({ "seats": "twelve" })),
            "seats",
            "not a number",
        ),
        (
            "dropdown value not offered",
            with(json!({ "product": "Gold" })),
            "product",
            "must be one of",
        ),
        (
            "unknown field",
            with(json!({ "colour": "red" })),
            "colour",
            "not a field",
        ),
    ];
    for (case, body, field, problem) in cases {
        let answer = world.post_json(&form.id, &body).await?;
        assert_eq!(answer.status, 422, "{case}: {}", answer.body);
        let problems = answer.json();
        let said = problems["fields"][field].as_str().unwrap_or_default();
        assert!(said.contains(problem), "{case}: {problems}");
        assert!(
            problems["error"]
                .as_str()
                .is_some_and(|e| e.contains(field)),
            "{case}"
        );
    }

    // A browser's post with a bad field gets the form back, filled in,
    // with the problem beside the field.
    let answer = world
        .post_form(
            &form.id,
            "name=Bea&email=nope&product=Pro&problem=%3Cb%3Ehelp%3C%2Fb%3E",
        )
        .await?;
    assert_eq!(answer.status, 422);
    assert!(
        answer
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
    );
    assert!(
        answer.body.contains("is not an email address"),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains("&lt;b&gt;help&lt;/b&gt;"),
        "kept and escaped"
    );

    let malformed: Vec<(&str, Option<&str>, Vec<u8>, u16)> = vec![
        (
            "broken JSON",
            Some("application/json"),
            b"{\"name\":".to_vec(),
            400,
        ),
        (
            "JSON that is not an object",
            Some("application/json"),
            b"[1,2]".to_vec(),
            400,
        ),
        (
            "nested JSON value",
            Some("application/json"),
            br#"{"name":{"a":1}}"#.to_vec(),
            400,
        ),
        (
            "broken percent-encoding",
            Some("application/x-www-form-urlencoded"),
            b"name=%zz".to_vec(),
            400,
        ),
        (
            "repeated field",
            Some("application/x-www-form-urlencoded"),
            b"name=a&name=b".to_vec(),
            400,
        ),
        ("plain text", Some("text/plain"), b"hello".to_vec(), 415),
        ("no content type", None, b"name=a".to_vec(), 415),
    ];
    for (case, content_type, body, status) in malformed {
        let answer = http(
            world.relay.addr,
            HOME,
            "POST",
            &format!("/forms/{}", form.id),
            content_type,
            body,
            false,
        )
        .await?;
        assert_eq!(answer.status, status, "{case}: {}", answer.body);
        assert!(!answer.body.is_empty(), "{case}: a message");
    }

    // Oversize bodies: 413, with a declared length and without one.
    let mut big = good_submission();
    big["problem"] = Value::String("x".repeat(70 * 1024));
    let big = serde_json::to_vec(&big)?;
    for chunked in [false, true] {
        let answer = http(
            world.relay.addr,
            HOME,
            "POST",
            &format!("/forms/{}", form.id),
            Some("application/json"),
            big.clone(),
            chunked,
        )
        .await?;
        assert_eq!(answer.status, 413, "chunked: {chunked}: {}", answer.body);
        assert!(
            answer.json()["error"]
                .as_str()
                .is_some_and(|e| e.contains("64 KiB"))
        );
    }

    // An unknown form: 404, as JSON for programs and as a page for people.
    let answer = world
        .post_json("form-doesNotExist", &good_submission())
        .await?;
    assert_eq!(answer.status, 404);
    assert!(answer.json()["error"].is_string());
    let answer = world.post_form("form-doesNotExist", "name=a").await?;
    assert_eq!(answer.status, 404);
    assert!(answer.body.contains("No such form"));
    assert_eq!(world.get("/forms/form-doesNotExist").await?.status, 404);
    assert_eq!(
        world.get("/forms/form-doesNotExist.json").await?.status,
        404
    );

    assert_eq!(world.documents()?, before, "nothing was added");
    assert!(
        !world.events()?.iter().any(|e| e.event == "form-submitted"),
        "nothing was recorded"
    );
    let listed = blocking(|| world.owner_api.form(&world.workspace, &form.id))?;
    assert_eq!(listed.submissions, 0);
    world
        .owner
        .sync_once(&world.config, PATIENCE, |_| {})
        .await?;
    assert!(World::tasks(&world.owner)?.is_empty());

    // The same submission, done right, goes through: the cases above were
    // refused for their fault alone.
    let answer = world.post_json(&form.id, &good_submission()).await?;
    assert_eq!(answer.status, 201, "{}", answer.body);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_form_says_so_and_takes_nothing() -> Result<()> {
    let world = World::new("closed", generous()).await?;
    let form = world.create_form(&support_form())?;
    assert_eq!(
        world.post_json(&form.id, &good_submission()).await?.status,
        201
    );
    let closed = blocking(|| world.owner_api.close_form(&world.workspace, &form.id))?;
    assert!(!closed.open);
    let before = world.documents()?;

    let page = world.get(&format!("/forms/{}", form.id)).await?;
    assert_eq!(page.status, 410);
    assert!(page.body.contains("closed"), "{}", page.body);
    assert!(!page.body.contains("<form"), "no form to fill in");
    assert_eq!(
        world.get(&format!("/forms/{}.json", form.id)).await?.status,
        410
    );
    let answer = world.post_json(&form.id, &good_submission()).await?;
    assert_eq!(answer.status, 410);
    assert!(
        answer.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("closed"))
    );
    let answer = world.post_form(&form.id, "name=Bea").await?;
    assert_eq!(answer.status, 410);

    assert_eq!(world.documents()?, before);
    let forms = blocking(|| world.owner_api.forms(&world.workspace))?;
    assert_eq!(forms.len(), 1);
    assert!(!forms[0].open);
    assert_eq!(forms[0].submissions, 1);
    let events: Vec<String> = world
        .events()?
        .iter()
        .map(|e| e.event.clone())
        .filter(|e| e.starts_with("form-"))
        .collect();
    assert_eq!(events, ["form-created", "form-submitted", "form-closed"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn only_admins_manage_forms() -> Result<()> {
    let world = World::new("admins", generous()).await?;
    let staff_api = RelayApi::new(&world.config, world.staff.identity().clone())?;
    let refused = blocking(|| staff_api.create_form(&world.workspace, &support_form()))
        .expect_err("staff may not create forms");
    assert_eq!(refused.status(), Some(403));
    let form = world.create_form(&support_form())?;
    for refused in [
        blocking(|| staff_api.forms(&world.workspace)).map(drop),
        blocking(|| staff_api.close_form(&world.workspace, &form.id)).map(drop),
    ] {
        assert_eq!(refused.expect_err("admins only").status(), Some(403));
    }
    let duplicate = blocking(|| {
        world
            .owner_api
            .create_form(&world.workspace, &support_form())
    })
    .expect_err("one open form per name");
    assert_eq!(duplicate.status(), Some(409));
    let mut bad = support_form();
    bad.name = "Support Form".into();
    let refused =
        blocking(|| world.owner_api.create_form(&world.workspace, &bad)).expect_err("a bad name");
    assert_eq!(refused.status(), Some(400));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_is_refused_after_the_burst_per_address() -> Result<()> {
    let mut world = World::new(
        "flood",
        FormLimits {
            burst: 5,
            // No refill during the test, however slow the machine.
            refill_every: Duration::from_secs(3600),
            ..FormLimits::default()
        },
    )
    .await?;
    let form = world.create_form(&support_form())?;
    let before = world.documents()?.len();
    for i in 0..5 {
        let answer = world.post_json(&form.id, &good_submission()).await?;
        assert_eq!(answer.status, 201, "submission {i}: {}", answer.body);
    }
    for _ in 0..3 {
        let answer = world.post_json(&form.id, &good_submission()).await?;
        assert_eq!(answer.status, 429, "{}", answer.body);
        let retry: u64 = answer
            .header("retry-after")
            .context("a Retry-After header")?
            .parse()?;
        assert!((1..=3600).contains(&retry), "{retry}");
        assert!(
            answer.json()["error"]
                .as_str()
                .is_some_and(|e| e.contains("Too many"))
        );
    }
    // Bad submissions count too: a flood of garbage is a flood.
    let answer = world.post_form(&form.id, "name=%zz").await?;
    assert_eq!(answer.status, 429);
    assert!(answer.body.contains("Too many submissions"));
    assert_eq!(
        world.documents()?.len(),
        before + 5,
        "only the burst was written"
    );

    // Another address has its own bucket (Linux routes all of 127/8 to
    // the loopback interface).
    if cfg!(target_os = "linux") {
        let other: IpAddr = "127.0.0.2".parse()?;
        let answer = world
            .post_json_from(other, &form.id, &good_submission())
            .await?;
        assert_eq!(answer.status, 201, "{}", answer.body);
    }
    world.relay.stop().await?;
    Ok(())
}
