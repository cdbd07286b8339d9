//! What a peer can make a receiver hold by how it cuts a stream into STREAM frames. quiche keeps each
//! received frame as its own heap buffer until the application reads it; the project's patches join
//! small contiguous ones (recv-coalesce) and refuse a stream whose chunks, past 1024, average under
//! 256 bytes of the span they cover (recv-fragment-cap). `quiche::stream_recv_probe` stores frames in
//! a stream receive buffer exactly as the connection does and returns its memory estimate.

/// One byte every other byte from offset 1: no two chunks touch, so none can be joined.
fn gapped(n: u64) -> impl Iterator<Item = (u64, usize)> {
    (0..n).map(|i| (1 + 2 * i, 1))
}

#[test]
fn gapped_one_byte_frames_cost_the_receiver_at_most_about_their_window() {
    const WINDOW: u64 = 64 << 10;
    let all = quiche::stream_recv_probe(gapped(WINDOW / 2), WINDOW);
    assert!(matches!(all, Err(quiche::Error::InvalidState)), "the stream is refused (PROTOCOL_VIOLATION), not kept: {all:?}");
    // The most it held before that.
    let accepted = (1..=WINDOW / 2).find(|&n| quiche::stream_recv_probe(gapped(n), WINDOW).is_err()).expect("refused somewhere") - 1;
    let held = quiche::stream_recv_probe(gapped(accepted), WINDOW).expect("accepted");
    eprintln!("{accepted} one-byte frames with gaps were kept, holding about {} KiB, before the stream was refused \
               (all {} would have held about {} KiB for a {} KiB window)",
        held >> 10, WINDOW / 2, (WINDOW / 2 * 160 + WINDOW) >> 10, WINDOW >> 10);
    assert_eq!(accepted, 1024);
    assert!(held < 3 * WINDOW as usize, "held {held} bytes for a {WINDOW}-byte window");
}

#[test]
fn senders_that_fill_their_packets_are_never_refused_even_with_heavy_loss() {
    const WINDOW: u64 = 32 << 20;
    const FRAME: u64 = 1200;
    // Full frames, every other one lost and not yet sent again: 13,981 chunks, none touching.
    let half_lost = (0..WINDOW / FRAME).filter(|i| i % 2 == 1).map(|i| (i * FRAME, FRAME as usize));
    assert!(quiche::stream_recv_probe(half_lost, WINDOW).is_ok());
    // A sender that ends each packet with a 20-byte frame (it fills a packet's last bytes), every third packet lost.
    let mut frames = Vec::new();
    let mut off = 0u64;
    for i in 0..WINDOW / (FRAME + 20) {
        if i % 3 != 0 {
            frames.push((off, FRAME as usize));
            frames.push((off + FRAME, 20));
        }
        off += FRAME + 20;
    }
    assert!(quiche::stream_recv_probe(frames, WINDOW).is_ok());
    // A stream written a byte at a time, one packet per byte, every other packet lost: what an interactive sender on a
    // very bad path looks like, up to the 1024 chunks any stream may hold.
    assert!(quiche::stream_recv_probe(gapped(1024), 1 << 20).is_ok());
}
