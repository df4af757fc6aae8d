import { request } from "undici";
import http from "node:http";
import net from "node:net";
const digests = (await import("node:fs")).readFileSync("/dev/shm/exp/digests", "utf8").trim().split("\n");
const mode = process.argv[2];
{ const r = await request("http://127.0.0.1:15000/v2/"); await r.body.text(); await new Promise((res) => http.get("http://127.0.0.1:15000/v2/", (r) => { r.resume(); r.on("end", res); })); }
const t0 = process.cpuUsage(); let chunks = 0, bytes = 0;
await Promise.all(digests.map(async (d) => {
  const url = `http://127.0.0.1:15000/v2/exp/blobs/${d}`;
  if (mode === "undici") {
    const r = await request(url);
    for await (const c of r.body) { chunks++; bytes += c.length; }
  } else if (mode === "http") {
    await new Promise((res, rej) => http.get(url, (r) => { r.on("data", (c) => { chunks++; bytes += c.length; }); r.on("end", res); }).on("error", rej));
  } else if (mode === "dispatch") {
    const { getGlobalDispatcher } = await import("undici");
    await new Promise((res, rej) => getGlobalDispatcher().dispatch({ origin: "http://127.0.0.1:15000", path: `/v2/exp/blobs/${d}`, method: "GET" }, {
      onConnect() {}, onHeaders() { return true; }, onData(c) { chunks++; bytes += c.length; return true; }, onComplete: res, onError: rej, onUpgrade() {},
    }));
  } else if (mode === "netdata") {
    await new Promise((res) => {
      const s = net.connect({ host: "127.0.0.1", port: 15000 });
      s.on("data", (c) => { chunks++; bytes += c.length; });
      s.write(`GET /v2/exp/blobs/${d} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      s.on("end", res); s.on("close", res);
    });
  } else if (mode === "netcopy") {
    await new Promise((res) => {
      const buf = Buffer.allocUnsafe(256 * 1024);
      const s = net.connect({ host: "127.0.0.1", port: 15000, onread: { buffer: buf, callback: (n) => { chunks++; bytes += n; const c = Buffer.allocUnsafeSlow(n); buf.copy(c, 0, 0, n); } } });
      s.write(`GET /v2/exp/blobs/${d} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      s.on("end", res); s.on("close", res);
    });
  } else if (mode === "net") {
    await new Promise((res) => {
      const buf = Buffer.allocUnsafe(256 * 1024);
      const s = net.connect({ host: "127.0.0.1", port: 15000, onread: { buffer: buf, callback: (n) => { chunks++; bytes += n; } } });
      s.write(`GET /v2/exp/blobs/${d} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      s.on("end", res); s.on("close", res);
    });
  }
}));
const u = process.cpuUsage(t0);
console.log(mode, "cpu ms", ((u.user + u.system) / 1000).toFixed(0), "user", (u.user/1000).toFixed(0), "sys", (u.system/1000).toFixed(0), "chunks", chunks, "avg KiB", (bytes / chunks / 1024).toFixed(1), "MiB", (bytes / 1048576).toFixed(0));
