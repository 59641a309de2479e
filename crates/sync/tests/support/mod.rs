//! Test harness: a scripted fake server that plays the server's role with the protocol types,
//! and a client wrapper that drives an [`Engine`] on a virtual clock and records its outputs.
//!
//! The fake server follows the server's documented order (validate → commit, assigning `seq` →
//! ack → publish), is idempotent on `broadcastId`, keeps its log so it can answer a resume with
//! exactly the missed events, and can be told to forget its log (new epoch) so that a resume
//! gets a snapshot instead.

#![allow(dead_code)] // Each test binary uses a different part of the harness.
#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::collections::HashMap;

use image_chat_protocol::{
    Ack, Anchor, BroadcastId, Chat, ChatChange, ChatId, ClientMessage, Comment, CommentId,
    DeletedImageChat, ErrorCode, ErrorFrame, Event, Hello, ImageChatUpdated, ImageId, ImageState,
    NewImageChat, Op, PageId, Position, ServerMessage, SubjectKind, TenantId, TextAnchor, User,
    Welcome,
};
use image_chat_sync::ids::SeededIds;
use image_chat_sync::{
    Action, Command, Config, ConnectionId, ConnectionStatus, Engine, LocalError, OpRef,
    TransportEvent, ViewUpdate,
};

/// The person the engine under test is.
pub fn alice() -> User {
    User {
        id: "anon:alice".into(),
        name: "Alice".into(),
        avatar_url: None,
        is_moderator: false,
        signed_in: false,
    }
}

/// Someone else.
pub fn bob() -> User {
    User {
        id: "anon:bob".into(),
        name: "Bob".into(),
        avatar_url: None,
        is_moderator: false,
        signed_in: false,
    }
}

/// Sequential UUID v4 ids (in their wire form) for the server side's own ops (distinct from
/// the engine's, which are random).
fn test_uuid(n: u64) -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&n.to_be_bytes());
    image_chat_protocol::ids::encode_uuid_v4(bytes)
}

/// A scripted server for one image (or one page: [`FakeServer::page`]).
#[derive(Debug)]
pub struct FakeServer {
    /// Image or page: which anchors it takes and how its events are named.
    pub kind: SubjectKind,
    pub epoch: u32,
    pub state: ImageState,
    /// Every event of the current epoch, in order (`log[i].seq == i + 1`).
    pub log: Vec<Event>,
    /// Committed broadcast ids and the `seq` they became (idempotency).
    pub committed: HashMap<BroadcastId, u64>,
    /// Wall clock for `createdAt` (advanced by each commit).
    pub clock: u64,
    pub online: u32,
    /// Codes to refuse the next ops with, in order (failure injection).
    pub refuse_next: Vec<ErrorCode>,
    /// Counter for the ids of ops the server invents for other clients.
    next_id: u64,
    /// Anonymous token handed out in `welcome`.
    pub token: Option<String>,
    /// Every discussion ever created, across epochs.
    pub ever_created: std::collections::HashSet<ChatId>,
}

impl Default for FakeServer {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeServer {
    pub fn new() -> Self {
        Self {
            kind: SubjectKind::Image,
            // Like the real store: no log (epoch 0) until the image's first change.
            epoch: 0,
            state: ImageState::default(),
            log: Vec::new(),
            committed: HashMap::new(),
            clock: 1_700_000_000_000,
            online: 1,
            refuse_next: Vec::new(),
            next_id: 0,
            token: Some("tok-alice".into()),
            ever_created: Default::default(),
        }
    }

    /// A server for a page's text: text anchors only, `*-text-chat` events.
    pub fn page() -> Self {
        Self {
            kind: SubjectKind::Page,
            ..Self::new()
        }
    }

    pub fn seq(&self) -> u64 {
        self.log.len() as u64
    }

    pub fn position(&self) -> Position {
        Position {
            epoch: self.epoch,
            seq: self.seq(),
        }
    }

    /// Forgets the log (as after a restore): resumes get a snapshot from now on.
    pub fn new_epoch(&mut self) {
        self.epoch += 1;
        self.log.clear();
    }

    /// The answer to `hello`: missed events when the resume position is in this epoch's log,
    /// otherwise a snapshot.
    pub fn welcome(&self, hello: &Hello, you: &User) -> Welcome {
        let resumable = hello
            .resume
            .filter(|r| r.epoch == self.epoch && r.seq <= self.seq());
        match resumable {
            Some(resume) => Welcome {
                you: you.clone(),
                token: self.token.clone(),
                position: self.position(),
                recovered: true,
                events: self.log[resume.seq as usize..].to_vec(),
                snapshot: None,
                online: self.online,
                read_only: false,
                locked: false,
            },
            None => Welcome {
                you: you.clone(),
                token: self.token.clone(),
                position: self.position(),
                recovered: false,
                events: Vec::new(),
                snapshot: Some(self.state.to_snapshot()),
                online: self.online,
                read_only: false,
                locked: false,
            },
        }
    }

    fn fresh_id(&mut self) -> String {
        self.next_id += 1;
        test_uuid(self.next_id)
    }

    /// Handles one op from `by`: `Ok((ack, Some(event)))` when committed now, `Ok((ack, None))`
    /// for a retry of an op already committed, `Err(error)` when refused.
    pub fn submit(&mut self, op: &Op, by: &User) -> Result<(Ack, Option<Event>), ErrorFrame> {
        let id = op.broadcast_id().clone();
        if let Some(seq) = self.committed.get(&id) {
            return Ok((
                Ack {
                    broadcast_id: id,
                    seq: *seq,
                },
                None,
            ));
        }
        let refuse = |code: ErrorCode| ErrorFrame {
            broadcast_id: Some(id.clone()),
            code,
            message: code.as_str().into(),
        };
        if !self.refuse_next.is_empty() {
            return Err(refuse(self.refuse_next.remove(0)));
        }
        if op.validate().is_err() {
            return Err(refuse(ErrorCode::InvalidText));
        }
        if op.check_subject(self.kind).is_err() {
            return Err(refuse(ErrorCode::WrongAnchorKind));
        }
        self.clock += 1;
        let seq = self.seq() + 1;
        // The first change creates the log and draws its epoch.
        let epoch = if self.epoch == 0 { 1 } else { self.epoch };
        let may_change = |author: &User| author.id == by.id || by.is_moderator;
        let event = match op {
            Op::CreateChat(o) => {
                if self.state.chat(&o.chat_id).is_some() {
                    return Err(refuse(ErrorCode::DuplicateId));
                }
                Event::created(
                    self.kind,
                    NewImageChat {
                        seq,
                        epoch,
                        broadcast_id: id.clone(),
                        chat: Chat {
                            id: o.chat_id.clone(),
                            anchor: o.anchor.canonical(),
                            comments: vec![Comment {
                                id: o.chat_id.opening_comment(),
                                author: by.clone(),
                                text: o.text.clone(),
                                created_at: self.clock,
                                edited_at: None,
                            }],
                            resolved: false,
                        },
                    },
                )
            }
            Op::AddComment(o) => {
                let Some(chat) = self.state.chat(&o.chat_id) else {
                    return Err(refuse(ErrorCode::UnknownChat));
                };
                if chat.comments.iter().any(|c| c.id == o.comment_id) {
                    return Err(refuse(ErrorCode::DuplicateId));
                }
                Event::updated(
                    self.kind,
                    ImageChatUpdated {
                        seq,
                        epoch,
                        broadcast_id: id.clone(),
                        chat_id: o.chat_id.clone(),
                        change: ChatChange::CommentAdded {
                            comment: Comment {
                                id: o.comment_id.clone(),
                                author: by.clone(),
                                text: o.text.clone(),
                                created_at: self.clock,
                                edited_at: None,
                            },
                        },
                    },
                )
            }
            Op::EditComment(o) => {
                let Some(chat) = self.state.chat(&o.chat_id) else {
                    return Err(refuse(ErrorCode::UnknownChat));
                };
                let Some(comment) = chat.comments.iter().find(|c| c.id == o.comment_id) else {
                    return Err(refuse(ErrorCode::UnknownComment));
                };
                if !may_change(&comment.author) {
                    return Err(refuse(ErrorCode::Forbidden));
                }
                Event::updated(
                    self.kind,
                    ImageChatUpdated {
                        seq,
                        epoch,
                        broadcast_id: id.clone(),
                        chat_id: o.chat_id.clone(),
                        change: ChatChange::CommentEdited {
                            comment_id: o.comment_id.clone(),
                            text: o.text.clone(),
                            edited_at: self.clock,
                        },
                    },
                )
            }
            Op::DeleteChat(o) => {
                let Some(chat) = self.state.chat(&o.chat_id) else {
                    return Err(refuse(ErrorCode::UnknownChat));
                };
                if !chat.author().is_some_and(may_change) {
                    return Err(refuse(ErrorCode::Forbidden));
                }
                Event::deleted(
                    self.kind,
                    DeletedImageChat {
                        seq,
                        epoch,
                        broadcast_id: id.clone(),
                        chat_id: o.chat_id.clone(),
                    },
                )
            }
            Op::DeleteComment(o) => {
                let Some(chat) = self.state.chat(&o.chat_id) else {
                    return Err(refuse(ErrorCode::UnknownChat));
                };
                let Some(at) = chat.comments.iter().position(|c| c.id == o.comment_id) else {
                    return Err(refuse(ErrorCode::UnknownComment));
                };
                if at == 0 || !may_change(&chat.comments[at].author) {
                    return Err(refuse(ErrorCode::Forbidden));
                }
                self.updated(
                    seq,
                    epoch,
                    &id,
                    &o.chat_id,
                    ChatChange::CommentDeleted {
                        comment_id: o.comment_id.clone(),
                    },
                )
            }
            Op::ResolveChat(image_chat_protocol::ResolveChat { chat_id, .. })
            | Op::MoveChat(image_chat_protocol::MoveChat { chat_id, .. }) => {
                let Some(chat) = self.state.chat(chat_id) else {
                    return Err(refuse(ErrorCode::UnknownChat));
                };
                if !chat.author().is_some_and(may_change) {
                    return Err(refuse(ErrorCode::Forbidden));
                }
                let change = match op {
                    Op::ResolveChat(o) => ChatChange::Resolved {
                        resolved: o.resolved,
                    },
                    Op::MoveChat(o) => ChatChange::Moved {
                        anchor: o.anchor.canonical(),
                    },
                    _ => unreachable!(),
                };
                self.updated(seq, epoch, &id, chat_id, change)
            }
        };
        self.state
            .apply(&event)
            .expect("the fake server only commits events that apply");
        if let Event::NewImageChat(e) | Event::NewTextChat(e) = &event {
            self.ever_created.insert(e.chat.id.clone());
        }
        self.epoch = epoch;
        self.log.push(event.clone());
        self.committed.insert(id.clone(), seq);
        Ok((
            Ack {
                broadcast_id: id,
                seq,
            },
            Some(event),
        ))
    }

    fn updated(
        &self,
        seq: u64,
        epoch: u32,
        id: &BroadcastId,
        chat_id: &ChatId,
        change: ChatChange,
    ) -> Event {
        Event::updated(
            self.kind,
            ImageChatUpdated {
                seq,
                epoch,
                broadcast_id: id.clone(),
                chat_id: chat_id.clone(),
                change,
            },
        )
    }

    /// Another client (as `by`) deletes a reply.
    pub fn remote_delete_comment(
        &mut self,
        by: &User,
        chat_id: &ChatId,
        comment_id: &CommentId,
    ) -> Event {
        let op = Op::DeleteComment(image_chat_protocol::DeleteComment {
            broadcast_id: BroadcastId::new(self.fresh_id()),
            chat_id: chat_id.clone(),
            comment_id: comment_id.clone(),
        });
        self.commit_remote(&op, by)
    }

    /// Another client (as `by`) resolves or reopens a discussion.
    pub fn remote_resolve(&mut self, by: &User, chat_id: &ChatId, resolved: bool) -> Event {
        let op = Op::ResolveChat(image_chat_protocol::ResolveChat {
            broadcast_id: BroadcastId::new(self.fresh_id()),
            chat_id: chat_id.clone(),
            resolved,
        });
        self.commit_remote(&op, by)
    }

    /// Another client (as `by`) moves a discussion.
    pub fn remote_move(&mut self, by: &User, chat_id: &ChatId, anchor: Anchor) -> Event {
        let op = Op::MoveChat(image_chat_protocol::MoveChat {
            broadcast_id: BroadcastId::new(self.fresh_id()),
            chat_id: chat_id.clone(),
            anchor,
        });
        self.commit_remote(&op, by)
    }

    /// Another client (as `by`) creates a discussion; returns its broadcast event.
    pub fn remote_create(&mut self, by: &User, text: &str) -> Event {
        let op = Op::CreateChat(image_chat_protocol::CreateChat {
            broadcast_id: BroadcastId::new(self.fresh_id()),
            chat_id: ChatId::new(self.fresh_id()),
            anchor: Anchor::point(0.25, 0.75),
            text: text.into(),
        });
        self.commit_remote(&op, by)
    }

    /// Another client (as `by`) starts a discussion on a passage of the page.
    pub fn remote_create_text(&mut self, by: &User, anchor: TextAnchor, text: &str) -> Event {
        let op = Op::CreateChat(image_chat_protocol::CreateChat {
            broadcast_id: BroadcastId::new(self.fresh_id()),
            chat_id: ChatId::new(self.fresh_id()),
            anchor: Anchor::Text(anchor),
            text: text.into(),
        });
        self.commit_remote(&op, by)
    }

    /// Another client (as `by`) replies in `chat_id`.
    pub fn remote_reply(&mut self, by: &User, chat_id: &ChatId, text: &str) -> Event {
        let op = Op::AddComment(image_chat_protocol::AddComment {
            broadcast_id: BroadcastId::new(self.fresh_id()),
            chat_id: chat_id.clone(),
            comment_id: CommentId::new(self.fresh_id()),
            text: text.into(),
        });
        self.commit_remote(&op, by)
    }

    /// Another client (as `by`) edits a comment.
    pub fn remote_edit(
        &mut self,
        by: &User,
        chat_id: &ChatId,
        comment_id: &CommentId,
        text: &str,
    ) -> Event {
        let op = Op::EditComment(image_chat_protocol::EditComment {
            broadcast_id: BroadcastId::new(self.fresh_id()),
            chat_id: chat_id.clone(),
            comment_id: comment_id.clone(),
            text: text.into(),
        });
        self.commit_remote(&op, by)
    }

    /// Another client (as `by`) deletes a discussion.
    pub fn remote_delete(&mut self, by: &User, chat_id: &ChatId) -> Event {
        let op = Op::DeleteChat(image_chat_protocol::DeleteChat {
            broadcast_id: BroadcastId::new(self.fresh_id()),
            chat_id: chat_id.clone(),
        });
        self.commit_remote(&op, by)
    }

    fn commit_remote(&mut self, op: &Op, by: &User) -> Event {
        // Injected refusals are meant for the engine's ops, not the scripted ones.
        let refusals = std::mem::take(&mut self.refuse_next);
        let result = self.submit(op, by);
        self.refuse_next = refusals;
        let (_, event) = result.expect("scripted remote op is valid");
        event.expect("scripted remote op is new")
    }
}

/// The engine under test on a virtual clock, with every output recorded.
pub struct Client {
    pub engine: Engine,
    pub now: u64,
    /// The socket of the last `Connect`, while the harness considers it open or opening.
    pub conn: Option<ConnectionId>,
    pub connects: Vec<ConnectionId>,
    pub closes: Vec<(ConnectionId, u16)>,
    /// Every frame the engine sent, parsed.
    pub sent: Vec<ClientMessage>,
    /// Every view update, in order.
    pub updates: Vec<ViewUpdate>,
    /// `now` at each `Connect`.
    pub connect_times: Vec<u64>,
}

impl Client {
    pub fn new(seed: u64) -> Self {
        Self::with_config(seed, config())
    }

    pub fn with_config(seed: u64, config: Config) -> Self {
        let mut client = Self {
            engine: Engine::new(0, config, seed, Box::new(SeededIds::new(seed))),
            now: 0,
            conn: None,
            connects: Vec::new(),
            closes: Vec::new(),
            sent: Vec::new(),
            updates: Vec::new(),
            connect_times: Vec::new(),
        };
        client.drain();
        client
    }

    /// Collects the engine's outputs; returns the frames sent since the last drain.
    pub fn drain(&mut self) -> Vec<ClientMessage> {
        while let Some(action) = self.engine.poll_action() {
            match action {
                Action::Connect { conn } => {
                    self.conn = Some(conn);
                    self.connects.push(conn);
                    self.connect_times.push(self.now);
                }
                Action::Close { conn, code, .. } => {
                    self.closes.push((conn, code));
                    if self.conn == Some(conn) {
                        self.conn = None;
                    }
                }
            }
        }
        let mut frames = Vec::new();
        while let Some(text) = self.engine.poll_transmit() {
            let msg = image_chat_protocol::decode_client_frame(&text)
                .unwrap_or_else(|e| panic!("engine sent an invalid frame {text}: {e}"));
            frames.push(msg);
        }
        self.sent.extend(frames.iter().cloned());
        while let Some(update) = self.engine.poll_view() {
            self.updates.push(update);
        }
        frames
    }

    pub fn transport(&mut self, event: TransportEvent) -> Vec<ClientMessage> {
        let conn = self.conn.expect("a socket is open");
        self.engine.handle_transport(self.now, conn, event);
        self.drain()
    }

    /// The socket opens; returns the `hello` the engine sent.
    pub fn open(&mut self) -> Hello {
        let frames = self.transport(TransportEvent::Opened);
        match frames.as_slice() {
            [ClientMessage::Hello(hello)] => hello.clone(),
            other => panic!("expected exactly a hello, got {other:?}"),
        }
    }

    pub fn recv(&mut self, msg: ServerMessage) -> Vec<ClientMessage> {
        self.transport(TransportEvent::Message(msg.to_json()))
    }

    pub fn recv_event(&mut self, event: Event) -> Vec<ClientMessage> {
        self.recv(event.into())
    }

    /// The server (or the network) closes the socket.
    pub fn closed(&mut self, code: u16) {
        self.transport(TransportEvent::Closed { code });
        self.conn = None;
    }

    pub fn local(&mut self, cmd: Command) -> Result<OpRef, LocalError> {
        let r = self.engine.handle_local(self.now, cmd);
        self.drain();
        r
    }

    pub fn network(&mut self, online: bool) {
        self.engine.handle_network(self.now, online);
        self.drain();
    }

    /// The person pressed "Reconnect now".
    pub fn reconnect_now(&mut self) {
        self.engine.reconnect_now(self.now);
        self.drain();
    }

    /// The page became visible again.
    pub fn visible(&mut self) {
        self.engine.handle_visible(self.now);
        self.drain();
    }

    /// Moves the clock forward by `ms`, firing every timer due on the way.
    pub fn advance(&mut self, ms: u64) {
        let target = self.now + ms;
        while let Some(deadline) = self.engine.poll_timeout() {
            if deadline > target {
                break;
            }
            self.now = self.now.max(deadline);
            self.engine.handle_timeout(self.now);
            self.drain();
        }
        self.now = target;
    }

    /// Waits for the next `Connect` (firing timers), then opens the socket and answers `hello`
    /// from `server`. Returns the `hello`.
    pub fn reconnect(&mut self, server: &FakeServer) -> Hello {
        let mut guard = 0;
        while self.conn.is_none() {
            let deadline = self
                .engine
                .poll_timeout()
                .expect("a reconnect is scheduled");
            self.advance(deadline.saturating_sub(self.now));
            guard += 1;
            assert!(guard < 10, "no reconnect happened");
        }
        let hello = self.open();
        let welcome = server.welcome(&hello, &alice());
        self.recv(ServerMessage::Welcome(welcome));
        assert_eq!(self.engine.status(), ConnectionStatus::Live);
        hello
    }

    /// First connection, ending live.
    pub fn connect(&mut self, server: &FakeServer) -> Hello {
        self.reconnect(server)
    }

    /// Lets the server handle every frame the engine sent since `from`, answering with acks,
    /// errors, pongs and the broadcasts (to this client too). Returns the events committed.
    pub fn serve(&mut self, server: &mut FakeServer, frames: Vec<ClientMessage>) -> Vec<Event> {
        let mut committed = Vec::new();
        for frame in frames {
            match frame {
                ClientMessage::Ping { nonce } => {
                    self.recv(ServerMessage::Pong(image_chat_protocol::Pong { nonce }));
                }
                ClientMessage::Hello(_) => panic!("unexpected second hello"),
                // Not ops: nothing is committed or answered.
                ClientMessage::SetName { .. } | ClientMessage::SetLock { .. } => {}
                other => {
                    let op = other.into_op().expect("an op");
                    match server.submit(&op, &alice()) {
                        Ok((ack, event)) => {
                            self.recv(ServerMessage::Ack(ack));
                            if let Some(event) = event {
                                committed.push(event.clone());
                                self.recv_event(event);
                            }
                        }
                        Err(error) => {
                            self.recv(ServerMessage::Error(error));
                        }
                    }
                }
            }
        }
        committed
    }

    /// Runs a local command and lets the server answer every frame it produced.
    pub fn op(&mut self, server: &mut FakeServer, cmd: Command) -> OpRef {
        let before = self.sent.len();
        let r = self.local(cmd).expect("op accepted");
        let frames = self.sent[before..].to_vec();
        self.serve(server, frames);
        r
    }

    pub fn announcements(&self) -> Vec<image_chat_sync::Announcement> {
        self.updates
            .iter()
            .filter_map(|u| match u {
                ViewUpdate::Announce(a) => Some(a.clone()),
                _ => None,
            })
            .collect()
    }

    /// Ops (by broadcast id) whose frames were sent, in order.
    pub fn sent_ops(&self) -> Vec<Op> {
        self.sent
            .iter()
            .cloned()
            .filter_map(|m| m.into_op().ok())
            .collect()
    }
}

pub fn config() -> Config {
    Config::new(
        TenantId::new("demo"),
        ImageId::new("https://example.com/cat.png"),
        Some(image_chat_protocol::Auth::Anonymous {
            name: "Alice".into(),
            token: None,
        }),
    )
}

/// An engine for a page's text.
pub fn page_config() -> Config {
    Config::new(
        TenantId::new("demo"),
        PageId::new("https://example.com/blog/post#chapter-1"),
        Some(image_chat_protocol::Auth::Anonymous {
            name: "Alice".into(),
            token: None,
        }),
    )
}

/// The container text of [`page_config`]'s page.
pub const ARTICLE: &str = "The harbour at dawn. Fishing boats leave before six; by seven \
                           the quay is quiet again and the gulls take over.";

/// The anchor of `passage` in [`ARTICLE`], as the widget builds it.
pub fn passage(passage: &str) -> TextAnchor {
    image_chat_anchor::describe_passage(ARTICLE, passage).expect("in the article")
}

/// Starts a discussion on `passage` of [`ARTICLE`].
pub fn create_text(on: &str, text: &str) -> Command {
    Command::CreateText {
        anchor: passage(on),
        text: text.into(),
    }
}

pub fn create(text: &str) -> Command {
    Command::CreateChat {
        x: 0.5,
        y: 0.5,
        text: text.into(),
    }
}
