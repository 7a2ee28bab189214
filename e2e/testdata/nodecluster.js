// An HTTP server run with Node's cluster module as its docs show it:
// the primary forks WORKERS workers, each listens on PORT; on Linux the
// primary accepts every connection and hands it to a worker in turn
// (round-robin, over IPC: SCM_RIGHTS). Each response names the worker and
// the connection as the worker sees it (req.socket's addresses, what apps
// log and filter on). A request for /slow is answered after a second.
//
// node nodecluster.js PORT WORKERS
const cluster = require("cluster");
const http = require("http");

const port = Number(process.argv[2]);
const workers = Number(process.argv[3]);

if (cluster.isPrimary) {
  let listening = 0;
  cluster.on("listening", () => {
    if (++listening === workers) console.log(`primary ${process.pid}: ${workers} workers listening on ${port}`);
  });
  for (let i = 0; i < workers; i++) cluster.fork();
} else {
  http.createServer((req, res) => {
    const s = req.socket;
    const line = `worker=${cluster.worker.id} remote=${s.remoteAddress}:${s.remotePort} local=${s.localAddress}:${s.localPort}\n`;
    const answer = () => res.end(line);
    if (req.url === "/slow") setTimeout(answer, 1000);
    else answer();
  }).listen(port);
}
