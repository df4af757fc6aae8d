// Deep imports of undici (see src/transport/undici.ts); typed there from undici's own declarations.
declare module "undici/lib/dispatcher/env-http-proxy-agent.js" {
  const EnvHttpProxyAgent: unknown;
  export default EnvHttpProxyAgent;
}
declare module "undici/lib/api/api-request.js" {
  const request: unknown;
  export default request;
}
declare module "undici/lib/api/api-connect.js" {
  const connect: unknown;
  export default connect;
}
declare module "undici/lib/dispatcher/dispatcher.js" {
  const Dispatcher: unknown;
  export default Dispatcher;
}
declare module "undici/lib/dispatcher/agent.js" {
  const Agent: unknown;
  export default Agent;
}
declare module "undici/lib/core/connect.js" {
  const buildConnector: unknown;
  export default buildConnector;
}
