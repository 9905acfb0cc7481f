/* TLS options, with redis.conf's names and meaning on the client side (docs/security.md). */
import type { Option } from './types.js';

export const TLS_OPTIONS: readonly Option[] = [
  {
    key: 'tlsPort',
    flag: 'tls-port',
    kind: 'port',
    def: 'off',
    help: 'TLS port to listen on (0: a free port; off: none)',
  },
  {
    key: 'tlsCertFile',
    flag: 'tls-cert-file',
    kind: 'string',
    def: undefined,
    help: 'PEM certificate (chain) the TLS port presents',
  },
  {
    key: 'tlsKeyFile',
    flag: 'tls-key-file',
    kind: 'string',
    def: undefined,
    help: 'PEM private key of --tls-cert-file (unencrypted)',
  },
  {
    key: 'tlsCaCertFile',
    flag: 'tls-ca-cert-file',
    kind: 'string',
    def: undefined,
    help: 'PEM CA bundle that client certificates are verified against',
  },
  {
    key: 'tlsAuthClients',
    flag: 'tls-auth-clients',
    kind: { oneOf: ['yes', 'no', 'optional'] },
    def: 'yes',
    help: 'client certificates: yes (required), optional (verified if sent), no (not asked for)',
  },
  {
    key: 'tlsHandshakeTimeout',
    flag: 'tls-handshake-timeout',
    kind: 'int',
    def: 10000,
    min: 1,
    help: 'milliseconds a client gets to finish its TLS handshake',
  },
  {
    key: 'upstreamTlsCaCertFile',
    flag: 'upstream-tls-ca-cert-file',
    kind: 'string',
    def: undefined,
    help: "rediss:// upstream: PEM CA bundle its certificate is verified against (default: Node's bundled root CAs)",
  },
  {
    key: 'upstreamTlsCertFile',
    flag: 'upstream-tls-cert-file',
    kind: 'string',
    def: undefined,
    help: 'rediss:// upstream: PEM client certificate semcache presents',
  },
  {
    key: 'upstreamTlsKeyFile',
    flag: 'upstream-tls-key-file',
    kind: 'string',
    def: undefined,
    help: 'rediss:// upstream: PEM private key of --upstream-tls-cert-file',
  },
  {
    key: 'upstreamTlsServerName',
    flag: 'upstream-tls-server-name',
    kind: 'string',
    def: undefined,
    help: "rediss:// upstream: name sent as SNI and checked against its certificate (default: the URL's host)",
  },
];
