//! `ServerMessage::welcome_with_encoded_snapshot` (the server's shared-snapshot welcome)
//! decodes to exactly the welcome built with the snapshot value.

use image_chat_protocol::{
    Anchor, Chat, ChatId, Comment, Position, ServerMessage, Snapshot, User, Welcome,
};

#[test]
fn a_welcome_around_an_encoded_snapshot_decodes_like_the_plain_one() {
    let you = User {
        id: "anon:1".into(),
        name: "Ada".into(),
        avatar_url: None,
        is_moderator: false,
        signed_in: false,
    };
    let chat_id = ChatId::new(image_chat_protocol::ids::encode_uuid_v4([3; 16]));
    let snapshot = Snapshot {
        chats: vec![Chat {
            id: chat_id.clone(),
            anchor: Anchor::point(0.5, 0.25),
            comments: vec![Comment {
                id: chat_id.opening_comment(),
                author: you.clone(),
                text: "hi \"there\"".into(),
                created_at: 1,
                edited_at: None,
            }],
            resolved: false,
        }],
    };
    for (token, read_only, snapshot) in [
        (Some("tok".to_owned()), true, snapshot),
        (None, false, Snapshot::default()),
    ] {
        let welcome = Welcome {
            you: you.clone(),
            token,
            position: Position { epoch: 9, seq: 4 },
            recovered: false,
            events: Vec::new(),
            snapshot: Some(snapshot.clone()),
            online: 3,
            read_only,
            locked: read_only,
        };
        let encoded = serde_json::to_string(&snapshot).expect("encode");
        let frame = ServerMessage::welcome_with_encoded_snapshot(&welcome, &encoded);
        assert_eq!(
            ServerMessage::from_json(&frame).expect("decodes"),
            ServerMessage::Welcome(welcome)
        );
    }
}
