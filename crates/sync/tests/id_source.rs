//! Issue 12, item 4: every id the engine mints comes from the id source its caller passes in
//! (the widget's: `crypto.getRandomValues`), never from the seeded jitter generator, so one
//! public `broadcastId` no longer reveals the ids a person will use next.

use image_chat_protocol::ids::encode_uuid_v4;
use image_chat_protocol::{ImageId, TenantId};
use image_chat_sync::ids::{IdSource, SeededIds};
use image_chat_sync::rng::Rng;
use image_chat_sync::{Command, Config, Engine, LocalError};

/// Hands out scripted bytes, as a test double for `crypto.getRandomValues`.
#[derive(Debug)]
struct Scripted(Vec<[u8; 16]>);

impl IdSource for Scripted {
    fn random16(&mut self) -> [u8; 16] {
        self.0.remove(0)
    }
}

fn offline_engine(seed: u64, ids: Box<dyn IdSource>) -> Engine {
    let mut config = Config::new(TenantId::new("t"), ImageId::new("i"), None);
    // Offline: an op is recorded as failed (with its ids) and nothing is sent.
    config.online = false;
    Engine::new(0, config, seed, ids)
}

fn create(engine: &mut Engine) -> image_chat_sync::OpRef {
    let cmd = Command::CreateChat {
        x: 0.5,
        y: 0.5,
        text: "hi".into(),
    };
    match engine.handle_local(1, cmd) {
        Err(LocalError::NotConnected { op, .. }) => op,
        other => panic!("expected the op recorded as not connected, got {other:?}"),
    }
}

#[test]
fn ids_are_the_id_sources_bytes() {
    let mut engine = offline_engine(
        7,
        Box::new(Scripted(vec![[1; 16], [2; 16], [3; 16], [4; 16]])),
    );
    let first = create(&mut engine);
    assert_eq!(first.op.as_str(), encode_uuid_v4([1; 16]));
    assert_eq!(first.chat_id.as_str(), encode_uuid_v4([2; 16]));
    let second = create(&mut engine);
    assert_eq!(second.op.as_str(), encode_uuid_v4([3; 16]));
    assert_eq!(second.chat_id.as_str(), encode_uuid_v4([4; 16]));
}

#[test]
fn the_jitter_seed_does_not_predict_ids() {
    // What the old engine did: ids straight from SplitMix64 seeded like the jitter. Knowing
    // the seed (or any one output) gave every next id.
    let seed = 0x5eed;
    let mut old = Rng::new(seed);
    let predicted = [encode_uuid_v4(old.bytes16()), encode_uuid_v4(old.bytes16())];
    let mut engine = offline_engine(seed, Box::new(Scripted(vec![[9; 16], [8; 16]])));
    let op = create(&mut engine);
    assert!(!predicted.contains(&op.op.as_str().to_owned()));
    assert!(!predicted.contains(&op.chat_id.as_str().to_owned()));
    // And two engines with the same jitter seed mint unrelated ids from their own sources.
    let mut a = offline_engine(seed, Box::new(SeededIds::new(1)));
    let mut b = offline_engine(seed, Box::new(SeededIds::new(2)));
    assert_ne!(create(&mut a).chat_id, create(&mut b).chat_id);
}
