// The parts of undici regcli uses (agents and the request API), imported by path: undici's index also loads fetch,
// WebSocket, cookies, caches and mocks, which cost every command 40-50 ms of start-up for nothing. The bundle pins the version
// (package-lock.json), so a path that moves fails the build, not a user.
import type { Socket } from "node:net";
import type { Agent as AgentType, buildConnector as BuildConnectorType, Dispatcher, EnvHttpProxyAgent as EnvHttpProxyAgentType } from "undici";
import AgentImpl from "undici/lib/dispatcher/agent.js";
import buildConnectorImpl from "undici/lib/core/connect.js";
import DispatcherImpl from "undici/lib/dispatcher/dispatcher.js";
import apiRequest from "undici/lib/api/api-request.js";

// What undici's index does first, for the one API regcli calls: every dispatcher gets request().
const dispatcherPrototype = (DispatcherImpl as { prototype: Record<string, unknown> }).prototype;
dispatcherPrototype.request = apiRequest;

export type { Dispatcher };
export const Agent = AgentImpl as unknown as typeof AgentType;

const buildConnector = buildConnectorImpl as typeof BuildConnectorType;

/**
 * undici's connector, except that a TLS error on an open connection closes it. TLS 1.3 servers refuse a missing or
 * unknown client certificate only after the handshake, with an alert; Node emits it without closing the socket,
 * undici then meets the close, reports "other side closed" and the alert (the reason) is lost.
 */
export function tlsConnector(options: BuildConnectorType.BuildOptions): BuildConnectorType.connector {
  const connect = buildConnector(options);
  return (opts, callback) =>
    connect(opts, ((err: Error | null, socket: Socket | null) => {
      socket?.once("error", () => socket.destroy());
      (callback as (err: Error | null, socket: Socket | null) => void)(err, socket);
    }) as BuildConnectorType.Callback);
}

/**
 * undici's proxy-aware agent, loaded only when a proxy is configured: it brings the proxy and SOCKS code, and
 * connect() (which it tunnels HTTPS with), that a run without a proxy never uses.
 */
export async function loadEnvHttpProxyAgent(): Promise<typeof EnvHttpProxyAgentType> {
  const [{ default: impl }, { default: apiConnect }] = await Promise.all([
    import("undici/lib/dispatcher/env-http-proxy-agent.js"),
    import("undici/lib/api/api-connect.js"),
  ]);
  dispatcherPrototype.connect = apiConnect;
  return impl as unknown as typeof EnvHttpProxyAgentType;
}

/** `request` on a given dispatcher, as undici's top-level `request(url, { dispatcher })` does it. */
export function request(
  url: URL,
  options: Omit<Dispatcher.RequestOptions, "origin" | "path"> & { dispatcher: Dispatcher },
): Promise<Dispatcher.ResponseData> {
  const { dispatcher, ...rest } = options;
  return dispatcher.request({ ...rest, origin: url.origin, path: `${url.pathname}${url.search}` });
}
