use automerge::AutoCommit;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rapport_model::Requirements;

use super::*;

fn splice(pos: usize, delete: usize, insert: &str) -> Splice {
    Splice {
        pos,
        delete,
        insert: insert.into(),
    }
}

#[test]
fn no_change_is_no_splice() {
    assert_eq!(splices("same\ntext\n", "same\ntext\n"), []);
    assert_eq!(splices("", ""), []);
}

#[test]
fn one_change_is_one_small_splice() {
    assert_eq!(
        splices("héllo world", "héllo big world"),
        [splice(6, 0, "big ")]
    );
    assert_eq!(splices("abc", ""), [splice(0, 3, "")]);
    assert_eq!(splices("", "new\n"), [splice(0, 0, "new\n")]);
}

#[test]
fn changes_far_apart_stay_apart() {
    let old = "## Scope\nA portal.\n\n## Drivers\nSales.\n\n## Timeline\nQ3.\n";
    let new = "## Scope\nA self-service portal.\n\n## Drivers\nSales.\n\n## Timeline\nBefore Q3.\n";
    let found = splices(old, new);
    let q3 = old.find("Q3").unwrap(); // ASCII: bytes are characters
    assert_eq!(
        found,
        [splice(11, 0, "self-service "), splice(q3, 0, "Before ")]
    );
    assert_eq!(apply(old, &found), new);
}

#[test]
fn random_edits_round_trip() {
    let seed = 0x5eed_u64;
    let mut rng = StdRng::seed_from_u64(seed);
    let alphabet = ['a', 'b', 'é', ' ', '\n'];
    let text = |rng: &mut StdRng, len: usize| -> String {
        (0..rng.random_range(0..len))
            .map(|_| alphabet[rng.random_range(0..alphabet.len())])
            .collect()
    };
    for round in 0..2000 {
        let old = text(&mut rng, 40);
        let new = text(&mut rng, 40);
        let found = splices(&old, &new);
        assert_eq!(
            apply(&old, &found),
            new,
            "seed {seed} round {round}: {old:?} -> {new:?}"
        );
        for pair in found.windows(2) {
            assert!(
                pair[0].pos + pair[0].delete <= pair[1].pos,
                "sorted, apart: {found:?}"
            );
        }
    }
}

#[test]
fn rebase_moves_my_splices_past_theirs_or_refuses() {
    let base = "one\ntwo\nthree\n";
    let mine = splices(base, "one\ntwo\nthree!\n");
    let theirs = splices(base, "zero\none\ntwo\nthree\n");
    let current = apply(base, &theirs);
    let moved = rebase(&mine, &theirs).unwrap();
    assert_eq!(apply(&current, &moved), "zero\none\ntwo\nthree!\n");
    let clash = splices(base, "one\n2\nthree\n");
    assert_eq!(rebase(&splices(base, "one\nTWO\nthree\n"), &clash), None);
}

fn body(doc: &AutoCommit) -> String {
    Requirements::read(doc).unwrap().body.as_str().to_owned()
}

/// The point of splices: an edit made in an editor on one replica and an
/// edit made elsewhere in the body on another both survive the merge.
#[test]
fn a_concurrent_edit_elsewhere_survives() {
    let original = "## Scope\nA portal.\n\n## Timeline and deadlines\nQ3.\n";
    let mut ours = AutoCommit::new();
    Requirements::new("Portal", original)
        .write(&mut ours)
        .unwrap();
    let mut theirs = ours.fork();

    Requirements::update(&mut theirs, |doc| {
        let at = doc.body.as_str().find("Q3").unwrap(); // ASCII: bytes are characters
        doc.body.splice(at, 0, "Launch before the ").unwrap();
    })
    .unwrap();

    let edited = original.replace("A portal.", "A self-service portal for buyers.");
    let found = splices(original, &edited);
    Requirements::update(&mut ours, |doc| {
        for splice in found.iter().rev() {
            doc.body
                .splice(splice.pos, splice.delete, &splice.insert)
                .unwrap();
        }
    })
    .unwrap();

    ours.merge(&mut theirs).unwrap();
    theirs.merge(&mut ours).unwrap();
    let expected = "## Scope\nA self-service portal for buyers.\n\n## Timeline and deadlines\nLaunch before the Q3.\n";
    assert_eq!(body(&ours), expected);
    assert_eq!(body(&theirs), expected);
}
