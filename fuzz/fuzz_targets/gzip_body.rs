//! The request body guard's decoding: any bytes, gzip-encoded or not, in
//! any chunking, under any cap. Never more than the cap, the same answer
//! however the bytes are split (accepted or refused), an uncompressed body exactly as sent, and
//! a gzip body exactly what a reference decoder makes of it.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use uplink::body::decode_chunks;
use uplink::error::ErrorCode;

fuzz_target!(|data: &[u8]| {
    let [mode, cap, split, body @ ..] = data else {
        return;
    };
    let gzip = mode & 1 == 1;
    // Caps from 0 bytes to 64 KiB, small ones most often.
    let max = usize::from(*cap) * if mode & 2 == 2 { 256 } else { 1 };
    let at = usize::from(*split).min(body.len());
    let (head, tail) = body.split_at(at);

    let whole = decode_chunks(gzip, max, [body]);
    let split = decode_chunks(gzip, max, [head, tail]);
    let bytewise = decode_chunks(gzip, max, body.chunks(1));
    // The same answer in any chunking; only a body both corrupt and over
    // the cap may be refused for either reason, depending on which the
    // decoder meets first.
    for other in [&split, &bytewise] {
        match (&whole, other) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "the chunking changes the body"),
            (Err(_), Err(_)) => {}
            _ => panic!("the chunking changes the answer: {whole:?} / {other:?}"),
        }
    }

    match &whole {
        Ok(decoded) => assert!(decoded.len() <= max, "over the cap"),
        Err(code) => assert!(
            matches!(code, ErrorCode::PayloadTooLarge | ErrorCode::InvalidGzip),
            "{code:?}"
        ),
    }
    if !gzip {
        match &whole {
            Ok(decoded) => assert_eq!(decoded, body),
            Err(code) => {
                assert_eq!(*code, ErrorCode::PayloadTooLarge);
                assert!(body.len() > max);
            }
        }
        return;
    }
    if let Ok(decoded) = &whole {
        let mut reference = Vec::new();
        flate2::read::MultiGzDecoder::new(body)
            .take(max as u64 + 1)
            .read_to_end(&mut reference)
            .expect("the reference decoder takes what the guard took");
        assert_eq!(decoded, &reference, "decoded differently");
    }
});
