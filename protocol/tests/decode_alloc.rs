//! Decoding never allocates more than the input justifies: a counting
//! allocator measures every byte `Message::decode` asks for.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use proptest::prelude::*;
use rapport_protocol::wire::Message;

/// Counts the bytes allocated on the current thread, so that tests running
/// in parallel do not see each other's allocations.
struct Counting;

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is a plain thread-local that itself never allocates.
#[allow(unsafe_code)] // a counting allocator is the one way to measure allocation
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.with(|a| a.set(a.get() + layout.size()));
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.with(|a| a.set(a.get() + new_size));
        // SAFETY: forwarded with the caller's arguments.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Bytes allocated while decoding `frame`, whatever the outcome.
fn allocated_by_decode(frame: &[u8]) -> usize {
    let before = ALLOCATED.with(Cell::get);
    let result = Message::decode(frame);
    let after = ALLOCATED.with(Cell::get);
    drop(result);
    after - before
}

/// What a frame of `len` bytes may cost: a constant for error values and
/// small tables, plus a fixed multiple of the input for the fields copied
/// out of it and the per-key table of the first pass.
fn budget(len: usize) -> usize {
    1024 + 32 * len
}

#[test]
fn lying_length_headers_allocate_nothing_large() {
    let frames: [&[u8]; 4] = [
        &[0xbb, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // map of 2^63 entries
        &[
            0xa1, 0x64, b'd', b'a', b't', b'a', 0x5b, 0, 0, 1, 0, 0, 0, 0, 0,
        ], // 1 TiB bytes
        &[0xa1, 0x7a, 0xff, 0xff, 0xff, 0xff],                   // 4 GiB key
        &[
            0xa1, 0x61, b'x', 0x9b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ], // array
    ];
    for frame in frames {
        let used = allocated_by_decode(frame);
        assert!(used <= budget(frame.len()), "{used} bytes for {frame:02x?}");
    }
}

#[test]
fn a_real_frame_stays_within_budget() {
    let frame = Message::Sync(rapport_protocol::wire::DocMessage {
        sender_id: "a".parse().unwrap(),
        target_id: "b".parse().unwrap(),
        document_id: rapport_protocol::ids::DocumentId::from_bytes([1; 16]),
        data: vec![7; 100_000],
    })
    .encode();
    let used = allocated_by_decode(&frame);
    assert!(used >= 100_000, "the data is copied out: {used}");
    assert!(
        used <= budget(frame.len()),
        "{used} bytes for {} input",
        frame.len()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    #[test]
    fn arbitrary_frames_stay_within_budget(frame in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let used = allocated_by_decode(&frame);
        prop_assert!(used <= budget(frame.len()), "{} bytes for {} input", used, frame.len());
    }

    #[test]
    fn many_small_keys_stay_within_budget(keys in 1usize..2000) {
        // The densest map: one-byte keys with one-byte values.
        let mut frame = vec![0xb9, (keys >> 8) as u8, keys as u8];
        for i in 0..keys {
            frame.extend([0x61, b'a' + (i % 26) as u8, 0x00]);
        }
        let used = allocated_by_decode(&frame);
        prop_assert!(used <= budget(frame.len()), "{} bytes for {} input", used, frame.len());
    }
}
