// The parts of undici regcli uses (agents and the request API), imported by path: undici's index also loads fetch,
// WebSocket, cookies, caches and mocks, which cost every command 40-50 ms of start-up for nothing. The bundle pins the version
// (package-lock.json), so a path that moves fails the build, not a user.
import type { Agent as AgentType, Dispatcher, EnvHttpProxyAgent as EnvHttpProxyAgentType } from "undici";
import api from "undici/lib/api/index.js";
import AgentImpl from "undici/lib/dispatcher/agent.js";
import DispatcherImpl from "undici/lib/dispatcher/dispatcher.js";
import EnvHttpProxyAgentImpl from "undici/lib/dispatcher/env-http-proxy-agent.js";

// What undici's index does first: every dispatcher gets request/connect/...; ProxyAgent tunnels with connect().
Object.assign((DispatcherImpl as { prototype: object }).prototype, api);

export type { Dispatcher };
export const EnvHttpProxyAgent = EnvHttpProxyAgentImpl as unknown as typeof EnvHttpProxyAgentType;
export const Agent = AgentImpl as unknown as typeof AgentType;

/** `request` on a given dispatcher, as undici's top-level `request(url, { dispatcher })` does it. */
export function request(
  url: URL,
  options: Omit<Dispatcher.RequestOptions, "origin" | "path"> & { dispatcher: Dispatcher },
): Promise<Dispatcher.ResponseData> {
  const { dispatcher, ...rest } = options;
  return dispatcher.request({ ...rest, origin: url.origin, path: `${url.pathname}${url.search}` });
}
