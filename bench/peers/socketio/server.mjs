// Socket.IO 4.8 (Node) with the benchmark's behaviour: a client emits `join(room)`
// (acknowledged once it is in the room) and `op(op)`; the op is acknowledged with
// `{broadcastId}` (the op's own id) and broadcast as `event(op)` to every member of the room,
// the sender included. No persistence. Defaults otherwise, WebSocket transport only (the load
// generator connects with it directly). Prints `peer-socketio listening on http://ADDR`, the
// line the load generator waits for. Usage: node server.mjs [--listen 127.0.0.1:0]
import { createServer } from "node:http";
import { Server } from "socket.io";

const at = process.argv.indexOf("--listen");
const [host, port] = (at > 0 ? process.argv[at + 1] : "127.0.0.1:0").split(":");

const http = createServer();
const io = new Server(http, { serveClient: false, transports: ["websocket"] });

io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    socket.join(room);
    socket.data.room = room;
    if (typeof ack === "function") ack("ok");
  });
  socket.on("op", (op, ack) => {
    if (typeof ack === "function") ack({ broadcastId: op?.broadcastId ?? null });
    if (socket.data.room !== undefined) io.to(socket.data.room).emit("event", op);
  });
});

http.listen(Number(port), host, () => {
  const { address, port: bound } = http.address();
  console.log(`peer-socketio listening on http://${address}:${bound}`);
});
