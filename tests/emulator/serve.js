// Starts the Firestore emulator on 127.0.0.1:PORT (the first argument) and
// prints "ready" once it listens. Used by the tests when
// FIRESTORE_EMULATOR_HOST does not name an emulator already running.
const { FirestoreServer } = require("@firestore-emulator/server");

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error("usage: node serve.js PORT");
  process.exit(2);
}
const server = new FirestoreServer();
server.start(port).then(
  () => console.log("ready"),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
