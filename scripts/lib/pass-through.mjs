// A bare HTTP pass-through in Node, for the bench's proxy scenario: what one Node process between a client and a
// registry costs by itself (no cache, no hashing, no files), the floor under any pull-through cache written in Node.
// Usage: node scripts/lib/pass-through.mjs LISTEN_HOST:PORT UPSTREAM_HOST:PORT
import http from "node:http";

const [listen, upstream] = process.argv.slice(2);
const [host, port] = listen.split(":");
const [upHost, upPort] = upstream.split(":");
const agent = new http.Agent({ keepAlive: true });
http
  .createServer((req, res) => {
    const up = http.request({ host: upHost, port: Number(upPort), method: req.method, path: req.url, headers: req.headers, agent }, (ur) => {
      res.writeHead(ur.statusCode, ur.statusMessage, ur.headers);
      ur.pipe(res);
    });
    up.on("error", (e) => (res.headersSent ? res.destroy(e) : res.writeHead(502).end(String(e))));
    res.on("close", () => !res.writableFinished && up.destroy());
    req.pipe(up);
  })
  .listen(Number(port), host);
