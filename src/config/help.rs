//! The `--help` texts of `kimai-mcp` and of each command. Plain text, shown as is; what the
//! options mean is decided in `config.rs` and `config/serve.rs`, which these texts describe.

pub const HELP: &str = "\
kimai-mcp: an MCP server for the Kimai time-tracking system

USAGE:
    kimai-mcp [stdio] [OPTIONS]   serve MCP over stdin/stdout (the default)
    kimai-mcp check [OPTIONS]     test the Kimai URL and token, then exit
    kimai-mcp serve [OPTIONS]     the HTTP server for many users (see kimai-mcp help serve)
    kimai-mcp health [--url URL]  ask a running server's /health; exit 0 when healthy
    kimai-mcp demo [--http]       serve stdio (or HTTP) against a built-in simulated Kimai
    kimai-mcp sim [--port N]      run the simulated Kimai alone (for trying clients)
    kimai-mcp setup [--print]     configure Claude Desktop for your Kimai (asks, checks, writes)
    kimai-mcp generate token      print a random server token (MCP_SERVER_TOKEN)
    kimai-mcp generate slug       print a random users.json slug
    kimai-mcp help [COMMAND]      help for a command

OPTIONS (stdio and check):
    --kimai-url URL         Kimai base URL, e.g. https://kimai.example.com   [env: KIMAI_URL]
    --kimai-token TOKEN     Kimai API token (Kimai: your profile > API access) [env: KIMAI_API_TOKEN]
    --ssl-verify VALUE      true (default), false, or the path of a PEM CA file for a private CA
                                                                               [env: KIMAI_SSL_VERIFY]
    --timeout SECS          overall time limit per Kimai request (default 30)  [env: KIMAI_TIMEOUT]
    --connect-timeout SECS  time limit to connect to Kimai (default 10)        [env: KIMAI_CONNECT_TIMEOUT]
    -h, --help              print help
    -V, --version           print the version

A flag beats its environment variable. Logs go to stderr; set RUST_LOG=debug for more
(e.g. RUST_LOG=kimai_mcp=debug). Tokens are never logged. --log-format json (any command;
KIMAI_MCP_LOG_FORMAT) writes one JSON object per line: time, level, target, message and the
fields of access and audit lines.

EXAMPLES:
    kimai-mcp demo                                   try it without a Kimai
    KIMAI_URL=https://kimai.example.com KIMAI_API_TOKEN=... kimai-mcp check
";

pub const HELP_STDIO: &str = "\
kimai-mcp stdio: serve MCP over stdin/stdout for one Kimai account

USAGE:
    kimai-mcp [stdio] --kimai-url URL --kimai-token TOKEN [--ssl-verify VALUE]

One JSON-RPC message per line on stdin; responses on stdout; logs on stderr. Exits when stdin
closes. Kimai is not contacted until the first tool call, so the server starts at once.

OPTIONS:
    --kimai-url URL         Kimai base URL (without /api)                      [env: KIMAI_URL]
    --kimai-token TOKEN     Kimai API token                                    [env: KIMAI_API_TOKEN]
    --ssl-verify VALUE      true, false, or a PEM CA file path (default true)  [env: KIMAI_SSL_VERIFY]
    --timeout SECS          overall time limit per Kimai request (default 30)  [env: KIMAI_TIMEOUT]
    --connect-timeout SECS  time limit to connect (default 10)                 [env: KIMAI_CONNECT_TIMEOUT]
    --kimai-user ID         accepted for compatibility and ignored            [env: KIMAI_DEFAULT_USER]
    --read-only             offer and serve only tool actions that read        [env: KIMAI_MCP_READ_ONLY]
    --tools LIST            only these tools or tool.actions, e.g. timesheet,timer.active
                                                                               [env: KIMAI_MCP_TOOLS]
    --exclude-tools LIST    never these, e.g. entity.delete,timesheet.batch_delete
                                                                               [env: KIMAI_MCP_EXCLUDE_TOOLS]
    --audit-log FILE        append one JSON line per write call (no tokens, no free text)
                                                                               [env: KIMAI_MCP_AUDIT_LOG]

Claude Desktop (claude_desktop_config.json):
    {\"mcpServers\": {\"kimai\": {\"command\": \"kimai-mcp\",
      \"env\": {\"KIMAI_URL\": \"https://kimai.example.com\", \"KIMAI_API_TOKEN\": \"...\"}}}}
";

pub const HELP_CHECK: &str = "\
kimai-mcp check: test the connection to Kimai and exit

USAGE:
    kimai-mcp check --kimai-url URL --kimai-token TOKEN [--ssl-verify VALUE]

Calls GET /api/version and GET /api/users/me with the same settings the server would use and
prints the Kimai version and the token's user, or exactly why it cannot: the name does not
resolve, the connection is refused or times out, the TLS certificate is not trusted, the URL
is not a Kimai, or the token is wrong or lacks permissions. Exit status 0 when it works, 1
when it does not, 2 for a usage error. Options and variables as for `kimai-mcp stdio`.
";

pub const HELP_SERVE: &str = "\
kimai-mcp serve: the HTTP server that many people share, each with their own Kimai identity

USAGE:
    kimai-mcp serve [OPTIONS]          (also started as kimai-mcp-streamable or kimai-mcp-server)

ENDPOINTS:
    /mcp/SLUG   Streamable HTTP for a user of the users file (the slug is the credential)
    /mcp        Streamable HTTP with `Authorization: Bearer SERVER_TOKEN` and the caller's own
                `X-Kimai-Token` (optional `X-Kimai-URL`, default --default-kimai-url;
                optional `X-Kimai-User`, a label for the audit log); with --public-url also
                with an OAuth access token of a users-file user
    /sse, /messages   the legacy HTTP+SSE transport (same credentials as /mcp)
    /health     status and counts (no secrets)
    /metrics    Prometheus counters (server token required)

OAUTH SIGN-IN (on with --public-url): applications such as Claude connectors find the
authorization server through /.well-known/oauth-protected-resource/mcp and
/.well-known/oauth-authorization-server, register themselves (/register), and send the person to
a sign-in page that asks for their user slug and the `auth_secret` of their users-file entry
-- or, with --auth-backend oidc, sends them on to the company's identity provider, whose
identity maps to a users-file entry by oidc_identity (or, with --auto-provision, to a Kimai user
that gets a token of its own). Every refusal shows one neutral page with a reference that the
log line repeats with the reason. Access tokens last --access-token-ttl, refresh tokens
--refresh-token-ttl (renewed on every use).

OPTIONS:                                    [env]                         (default)
    --host ADDR               address to listen on   [KIMAI_MCP_HOST]     (127.0.0.1)
    --port N                  port                   [KIMAI_MCP_PORT]     (8000)
    --workers N               requests handled at once; more wait       (32)
                                                     [KIMAI_MCP_WORKERS]
    --users-config FILE       users.json: slug -> kimai_url, kimai_token, ssl_verify,
                              auth_secret (for OAuth sign-in), oidc_identity (for sign-in
                              through the identity provider), read_only, tools,
                              exclude_tools          [USERS_CONFIG_FILE]
    --read-only               every caller may only read (a user's entry or an OAuth
                              kimai:read grant can also make one caller read-only)
                                                     [KIMAI_MCP_READ_ONLY]
    --tools LIST              only these tools or tool.actions, for every caller
                                                     [KIMAI_MCP_TOOLS]
    --exclude-tools LIST      never these tools or tool.actions [KIMAI_MCP_EXCLUDE_TOOLS]
    --audit-log FILE          append one JSON line per write call (time, user, client,
                              session, tool, action, ids, outcome; synced; reopened on
                              SIGHUP for log rotation)          [KIMAI_MCP_AUDIT_LOG]
    --server-token T[,T2]     token(s) for /mcp and /sse; several during a rotation;
                              generated and printed once when unset [MCP_SERVER_TOKEN]
    --server-token-file FILE  the tokens in a file (comma- or line-separated), re-read on
                              SIGHUP                 [MCP_SERVER_TOKEN_FILE]
    --default-kimai-url URL   Kimai for /mcp clients that send no X-Kimai-URL
                                                     [DEFAULT_KIMAI_URL]
    --ssl-verify VALUE        TLS for /mcp clients' Kimai: true, false or a CA file
                                                     [KIMAI_SSL_VERIFY]   (true)
    --rate-limit-rpm N        requests per minute per client address, 0 = off
                                                     [RATE_LIMIT_RPM]     (60)
    --max-sessions N          open sessions at most; more get 503      (10000)
                                                     [MAX_SESSIONS]
    --session-ttl SECS        idle time after which a session ends     (3600)
                                                     [SESSION_TTL]
    --require-https           refuse requests that did not come over HTTPS (through a trusted
                              proxy sending X-Forwarded-Proto: https) [REQUIRE_HTTPS]
    --trusted-proxy IP/CIDR   believe X-Forwarded-For/-Proto and X-Real-IP from this proxy;
                              repeatable or comma-separated [KIMAI_MCP_TRUSTED_PROXIES]
    --allowed-origin ORIGIN   a browser origin allowed to call (CORS); repeatable
                                                     [KIMAI_MCP_ALLOWED_ORIGINS]
    --public-host NAME        a Host name to accept when listening on loopback behind a proxy
                              that forwards the public name (proxy_set_header Host $host);
                              repeatable or comma-separated [KIMAI_MCP_PUBLIC_HOSTS]
    --instance-id NAME        prefix session ids with NAME. so that a proxy in front of several
                              instances sends a session's requests to its instance
                                                     [KIMAI_MCP_INSTANCE_ID]
    --timeout SECS, --connect-timeout SECS   Kimai request limits (30, 10)
    --public-url URL          the address people reach the server at, e.g.
                              https://mcp.example.com (https unless loopback; no path); turns
                              on OAuth sign-in and is its issuer [KIMAI_MCP_PUBLIC_URL]
    --oauth-state-file FILE   keep registered applications and sign-ins across restarts
                              (written atomically, mode 600; tokens only as SHA-256 digests)
                                                     [KIMAI_MCP_OAUTH_STATE_FILE]
    --access-token-ttl SECS   lifetime of OAuth access tokens       (3600)
                                                     [KIMAI_MCP_ACCESS_TOKEN_TTL]
    --refresh-token-ttl SECS  lifetime of OAuth refresh tokens      (2592000 = 30 days)
                                                     [KIMAI_MCP_REFRESH_TOKEN_TTL]
    --disable-legacy-slugs    turn off /mcp/SLUG (then slugs are only user names for the
                              sign-in form)          [KIMAI_MCP_DISABLE_LEGACY_SLUGS]
    --disable-client-metadata-documents   refuse client_ids that are URLs (client ID
                              metadata documents); on by default: such a document is fetched
                              over https from public addresses only, at most 5 KiB, within 5 s
                                                     [KIMAI_MCP_DISABLE_CLIENT_METADATA_DOCUMENTS]
    --allow-localhost-client-metadata-for-tests   also fetch http://localhost documents (for
                              test suites only; never in production)
    --auth-backend local|oidc how people sign in to OAuth: local = slug and auth_secret on
                              the sign-in page; oidc = the company's OpenID Connect identity
                              provider (users mapped by oidc_identity)   (local)
                                                     [KIMAI_MCP_AUTH_BACKEND]
    --oidc-issuer URL         the provider's issuer (https; http only on loopback)
                                                     [KIMAI_MCP_OIDC_ISSUER]
    --oidc-client-id ID       this server's client at the provider; register the redirect
                              URI <public URL>/oauth/oidc/callback there
                                                     [KIMAI_MCP_OIDC_CLIENT_ID]
    --oidc-client-secret S    its secret (omit for a public client); prefer the variable
                                                     [KIMAI_MCP_OIDC_CLIENT_SECRET]
    --oidc-scopes SCOPES      space- or comma-separated   (openid email profile)
                                                     [KIMAI_MCP_OIDC_SCOPES]
    --oidc-identity-claim C   the ID-token claim matched against oidc_identity, then email,
                              preferred_username, upn (email only when email_verified; for
                              Entra ID use oid)            (email)
                                                     [KIMAI_MCP_OIDC_IDENTITY_CLAIM]
    --oidc-discovery-url URL  (<issuer>/.well-known/openid-configuration)
                                                     [KIMAI_MCP_OIDC_DISCOVERY_URL]
    --oidc-allow-unverified-email   accept e-mail addresses the provider has not verified
                              (unsafe unless the provider verifies every address)
                                                     [KIMAI_MCP_OIDC_ALLOW_UNVERIFIED_EMAIL]
    --auto-provision          a person the provider signs in who has a Kimai user but no
                              users.json entry gets a Kimai API token of their own, made by
                              Kimai's ApiTokenBundle plugin (needs --auth-backend oidc)
                                                     [KIMAI_MCP_AUTO_PROVISION]
    --provision-kimai-url URL the Kimai whose users are matched  [KIMAI_MCP_PROVISION_KIMAI_URL]
    --provision-admin-token T a super admin's Kimai token (view_user, api-token_other_profile);
                              prefer the variable    [KIMAI_MCP_PROVISION_ADMIN_TOKEN]
    --provision-token-name N  the name of the tokens made, 2-50 characters  (Kimai MCP (auto))
                                                     [KIMAI_MCP_PROVISION_TOKEN_NAME]
    --provision-match MODE    exact (e-mail or user name), normalized (also the address's local
                              part, folded), fuzzy (also display names and name parts: risky,
                              a look-alike name can get a colleague's token)   (normalized)
                                                     [KIMAI_MCP_PROVISION_MATCH]
    --provision-store FILE    keep provisioned users across restarts (mode 600, atomic)
                                                     [KIMAI_MCP_PROVISION_STORE]
    --provision-ssl-verify V  TLS for that Kimai: true, false or a CA file   (true)
                                                     [KIMAI_MCP_PROVISION_SSL_VERIFY]
    --provision-allowed-domains D   mail domains an identity must be in, comma-separated
                              (strongly advised; unset: any, with a warning)
                                                     [KIMAI_MCP_PROVISION_ALLOWED_DOMAINS]
    --allowed-kimai-url URL   a Kimai that /mcp and /sse callers may name in X-Kimai-URL;
                              repeatable or comma-separated; '*' allows any (not advised).
                              --default-kimai-url and the users file's URLs are always allowed;
                              any other X-Kimai-URL gets 403 before a connection is made
                                                     [KIMAI_MCP_ALLOWED_KIMAI_URLS]

LIMITS (each client address -- an IPv4 address or an IPv6 /64 -- and each credential -- slug,
Kimai token, OAuth user -- gets its own share, so that no one client can use up what the
others need; behind a --trusted-proxy the forwarded client address counts):
    --max-connections N              connections open at once, in all      (4096)
                                                     [KIMAI_MCP_MAX_CONNECTIONS]
    --max-connections-per-address N  connections from one address          (64)
                                                     [KIMAI_MCP_MAX_CONNECTIONS_PER_ADDRESS]
    --max-connections-per-proxy N    connections from one trusted proxy     (1024)
                                                     [KIMAI_MCP_MAX_CONNECTIONS_PER_PROXY]
    --body-timeout SECS              a request body must arrive within this (30)
                                                     [KIMAI_MCP_BODY_TIMEOUT]
    --max-sessions-per-user N        open sessions of one credential; a new one ends that
                                     credential's least recently used session (20)
                                                     [KIMAI_MCP_MAX_SESSIONS_PER_USER]
    --session-rate-per-address N     new sessions per minute from one address, 0 = off (60)
                                                     [KIMAI_MCP_SESSION_RATE_PER_ADDRESS]
    --max-calls-per-user N           tool calls of one credential at once; more wait (4)
                                                     [KIMAI_MCP_MAX_CALLS_PER_USER]
    --max-batch N                    messages in one JSON-RPC batch          (20)
                                                     [KIMAI_MCP_MAX_BATCH]
    --user-rate-limit-rpm N          requests per minute of one credential from all its
                                     addresses together, 0 = off             (0)
                                                     [KIMAI_MCP_USER_RATE_LIMIT_RPM]
    --max-registrations-per-address N  OAuth client registrations per hour from one
                                     address, 0 = off                        (20)
                                                     [KIMAI_MCP_MAX_REGISTRATIONS_PER_ADDRESS]
    --max-pending-sign-ins-per-address N  OAuth sign-ins in progress from one address; a new
                                     one ends that address's oldest           (20)
                                                     [KIMAI_MCP_MAX_PENDING_SIGN_INS_PER_ADDRESS]

SEVERAL INSTANCES, ONE STATE (README: Running several instances):
    --state URL               redis://HOST:PORT/DB or rediss:// (Redis or Valkey): Streamable
                              HTTP sessions, the limits above, the rate limits and the OAuth
                              clients, sign-ins and tokens are kept there, so that any
                              instance serves anyone and the limits hold for all instances
                              together; unset: all in this process
                                                     [KIMAI_MCP_STATE_URL]
    --state-password-file FILE  the store's password (else from the URL; never logged)
                                                     [KIMAI_MCP_STATE_PASSWORD_FILE]
    --state-key-file FILE     a secret of 32+ characters, the same on every instance: seals
                              what the store must keep usable (with --auto-provision, the
                              provisioned Kimai tokens; required then)
                                                     [KIMAI_MCP_STATE_KEY_FILE]
    --state-ca-file FILE      with rediss://: trust the CA certificates in this PEM file
                              (a private CA) instead of the built-in public ones
                                                     [KIMAI_MCP_STATE_CA_FILE]
    --call-lease SECS         with --state: a tool call's place among its user's calls lapses
                              after this, so a killed instance gives it back       (120)
                                                     [KIMAI_MCP_CALL_LEASE]

SIGNALS: SIGHUP re-reads the users file and the token file (sessions of users that remain keep
working; sessions and OAuth sign-ins of removed users end, and sign-ins of users whose
auth_secret changed); SIGTERM or SIGINT stop accepting, let requests in
progress finish (up to 10 s) and exit.

A flag beats its environment variable. Unknown slugs are answered slowly; more than 10 misses in
60 s block the address for 5 minutes. Logs (stderr, RUST_LOG; --log-format json or
KIMAI_MCP_LOG_FORMAT=json for one JSON object per line) name no token, slug or body.
";

pub const HELP_DEMO: &str = "\
kimai-mcp demo: try kimai-mcp without a Kimai

USAGE:
    kimai-mcp demo [--seed N]

Starts a simulated Kimai (in memory, realistic data: customers, projects, activities, users,
teams and a few thousand timesheets over two years) on a loopback port and serves MCP over
stdin/stdout against it, as a team lead. Point an MCP client's command at `kimai-mcp demo`.

With --http [--port N], it runs `kimai-mcp serve` against the simulator instead and prints the
URL to paste into a client (a personal /mcp/SLUG URL, and the /mcp headers).
";

pub const HELP_SIM: &str = "\
kimai-mcp sim: run the simulated Kimai alone

USAGE:
    kimai-mcp sim [--port N] [--seed N] [--no-workcontract] [--api-token-plugin]

Serves a simulated Kimai 2.65 REST API on 127.0.0.1 (port 0 = any free port) and prints its
URL and the API token of every user, one per line, on stdout. Runs until interrupted. Any Kimai
client can be pointed at it, e.g. `kimai-mcp check --kimai-url URL --kimai-token TOKEN`.
--no-workcontract leaves out the WorkContract plugin (absences, public holidays);
--api-token-plugin installs the ApiTokenBundle plugin (POST /api/users/ID/api-token), which
`serve --auto-provision` needs.
";

pub const HELP_HEALTH: &str = "\
kimai-mcp health: ask a running `kimai-mcp serve` whether it is healthy

USAGE:
    kimai-mcp health [--url URL | --port N] [--timeout SECS]

Sends GET /health over plain HTTP and exits 0 when the answer is 200 with a JSON \"status\" of
\"ok\" or \"healthy\"; otherwise prints one line saying what was wrong and exits 1 (2 for a
usage error). Meant for health checks: the container image runs it as its HEALTHCHECK.

OPTIONS:                                    [env]                         (default)
    --url URL        the URL to ask; http only (it checks the local process, not a TLS proxy);
                     no path means /health
    --port N         without --url: ask http://127.0.0.1:N/health
                                            [KIMAI_MCP_PORT]              (8000)
                     (KIMAI_MCP_HOST, as serve reads it, picks the address: 0.0.0.0 or unset
                     means 127.0.0.1, :: means [::1], any other address is asked as it is)
    --timeout SECS   time limit for connecting and the whole answer                 (3)
";
