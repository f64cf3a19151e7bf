import { z } from 'zod';
import { apiSchema } from '../api/config-schema.ts';
import { metricsSchema } from '../metrics/config-schema.ts';
import { webhooksSchema } from '../webhooks/config-schema.ts';
import { midsourcingSchema } from '../midsourcing/config.ts';
import { deliverabilitySchema } from '../rules-versions/config-schema.ts';
import { trackingSchema } from '../tracking/config-schema.ts';

// Every key has a default and a comment; unknown keys are rejected (`.strict()`), so a typo in
// herald.yaml is an error instead of a silently ignored setting. docs/configuration.md lists them.

/**
 * An interval or timeout in `unitMs` units (1 ms, 1000 s, 60000 min) that a timer or PostgreSQL holds:
 * at most 2^31 − 1 ms (about 24.8 days). Past it, a Node timer fires after 1 ms, over and over (a
 * TimeoutOverflowWarning each time), and PostgreSQL refuses the setting.
 */
const timerDuration = (unitMs: number) => {
  const max = Math.floor(2_147_483_647 / unitMs);
  return z.number().int().max(max, `at most ${max} (about 24 days, the longest timer Node.js and PostgreSQL hold)`);
};

const routeSchema = z
  .object({
    /** A recipient domain (`example.test`) or an MX host pattern with `*` (`*.mx.example.test`). */
    match: z.string().min(1),
    /** Host to connect to instead of the MX found in DNS. */
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(25),
  })
  .strict();

const dkimKeySchema = z
  .object({
    /** The From domain this key signs for. */
    domain: z.string().min(1),
    selector: z.string().min(1),
    /** Path to a PEM private key (RSA for rsa-sha256, Ed25519 for ed25519-sha256). */
    privateKeyFile: z.string().min(1),
    algorithm: z.enum(['rsa-sha256', 'ed25519-sha256']).default('rsa-sha256'),
  })
  .strict();

const affinityAddressSchema = z
  .object({
    /** Local IP address the MTA binds its sockets to. */
    address: z.string().min(1),
    /** EHLO name announced from this address; should match its reverse DNS. */
    heloName: z.string().min(1),
    /** Public id of the address as ISPs see it: the key of throttle counters (MX rules' publicIds). */
    publicId: z.number().int().min(0).max(1_000_000),
    /** Relative share of the pool (5/5/1 → 45/45/10 %). */
    weight: z.number().min(0).default(1),
    /** Only these recipient domains (masks allowed, e.g. `*.fr`); empty = all. */
    includeDomains: z.array(z.string().min(1)).default([]),
    /** Never these recipient domains (masks allowed). */
    excludeDomains: z.array(z.string().min(1)).default([]),
  })
  .strict();

const shapingSchema = z
  .object({
    /** MX rule packs loaded in order; empty = the shipped rules/mx/default.yaml. See docs/mx-rules.md. */
    rulesFiles: z.array(z.string().min(1)).default([]),
    /** Directory of site overrides (*.yaml, name order), layered over rulesFiles; '' = none. */
    siteRulesDir: z.string().default(''),
    /** How often the MTA checks the rule files for changes (a valid change is swapped in atomically). */
    reloadCheckMs: timerDuration(1).min(100).default(1_000),
    /** Shared throttle counters across MTA processes; '' = in-memory (one process). HERALD_REDIS_URL overrides. */
    redisUrl: z.string().default(''),
    /** Namespace of the throttle keys in Redis: MTAs share limits only under the same prefix. */
    redisKeyPrefix: z.string().min(1).max(100).default('herald:shaping:'),
    /** The period of maxMessagesPerHour. Only tests and simulations shorten it. */
    ratePeriodMs: z.number().int().min(1_000).default(3_600_000),
    /** A connection lease not released or renewed within this time expires (crashed MTA process). */
    connectionLeaseMs: timerDuration(1).min(1_000).default(300_000),
    /** How often each MTA process writes its shaping snapshot for `herald mx stats`. */
    statsIntervalMs: timerDuration(1).min(1_000).default(10_000),
    /** Named pools of source addresses; a delivery names one (none configured = the host's default address). */
    affinities: z
      .array(z.object({ name: z.string().min(1), addresses: z.array(affinityAddressSchema).min(1) }).strict())
      .default([]),
    breaker: z
      .object({
        enabled: z.boolean().default(true),
        /** A domain needs at least this many messages in the window before it can be suspended. */
        minMessages: z.number().int().min(1).default(300),
        /** Fraction of errors (4xx, 5xx, no answer) that suspends it. */
        errorRatio: z.number().gt(0).max(1).default(0.9),
        windowMinutes: z.number().int().min(1).default(60),
        suspendMinutes: z.number().int().min(1).default(180),
      })
      .strict()
      .default({}),
    backoff: z
      .object({
        /** Apply the backoff rules of the MX rule packs (421 4.7.0 → halve the rate, ...). */
        enabled: z.boolean().default(true),
        /** Repeated backoffs compound down to this fraction of a limit, never below. */
        minFactor: z.number().gt(0).max(1).default(0.0625),
      })
      .strict()
      .default({}),
  })
  .strict();

export const defaultDatabaseUrl = 'sqlite:./data/herald.db';

export const configSchema = z
  .object({
    /** Identifies this process in claims; one live MTA process per id (another is refused with NODE_ID_IN_USE). Unset: the host name, or host name-pid when another live process on the host holds it. A restarted node takes back its own claims at once. */
    nodeId: z.string().min(1).optional(),
    database: z
      .object({
        /** `sqlite:./data/herald.db` (default) or `postgres://user@host:5432/db`. HERALD_DATABASE_URL overrides. */
        url: z
          .string()
          .refine((url) => !/^postgres(ql)?:\/\//.test(url) || URL.canParse(url), {
            message:
              'not a valid URL (not shown: it may hold the password): the port must be a number, and a # / ? @ in the user or password percent-encoded (# as %23, / as %2F, @ as %40); HERALD_DATABASE_URL overrides this key',
          })
          .default(defaultDatabaseUrl),
        /** PostgreSQL: how long a new connection (or a query waiting for a free one) may wait; a server that accepts and never answers fails with DATABASE_UNREACHABLE instead of hanging. */
        connectTimeoutMs: z.number().int().min(100).max(600_000).default(30_000),
        /** PostgreSQL: how long a query may wait for a lock another session holds (an operator's LOCK TABLE, a VACUUM FULL) before it fails with DATABASE_LOCK_TIMEOUT naming the query, instead of holding its connection for good; 0 = no limit. */
        lockTimeoutMs: timerDuration(1).min(0).default(60_000),
        /** PostgreSQL: how long one statement may run before it is cancelled with DATABASE_STATEMENT_TIMEOUT; 0 = no limit. Database maintenance uses maintenanceTimeoutMs instead. */
        statementTimeoutMs: timerDuration(1).min(0).default(600_000),
        /** PostgreSQL: how long one VACUUM or REINDEX of the database maintenance (cleanup workflow, `herald db maintain`) may run; 0 = no limit. */
        maintenanceTimeoutMs: timerDuration(1).min(0).default(21_600_000),
      })
      .strict()
      .default({}),
    delivery: z
      .object({
        /** How long a delivery keeps retrying soft failures (RFC 5321 §4.5.4.1 suggests 4-5 days). */
        validityHours: z.number().positive().default(120),
        /**
         * Rows handled per preparation batch: bounds memory whatever the target size. At most 30,000:
         * a batch's excluded recipients are bound values of one statement, and SQLite binds at most 32,766.
         */
        preparationBatchSize: z.number().int().min(1).max(30_000).default(5_000),
        /** Preparation: addresses differing only in the local part's case are one recipient (the domain's case never counts); false keeps `Ann@` and `ann@` apart (RFC 5321 §2.4). */
        foldLocalPartCase: z.boolean().default(true),
        /** Liveness lease of a running preparation, renewed every third of it: a delivery `preparing` without renewal for this long belongs to a dead process, and `delivery prepare` takes it over at once. */
        preparationLeaseSeconds: z.number().int().min(5).max(3_600).default(30),
      })
      .strict()
      .default({}),
    mta: z
      .object({
        /** HELO/EHLO name announced to MX hosts. */
        heloName: z.string().default('localhost'),
        /** Domain of the VERP Return-Path: bounce+<delivery log id>@<bounceDomain>. */
        bounceDomain: z.string().default('bounces.herald.invalid'),
        /** Delivery logs claimed per database round trip. */
        claimBatchSize: z.number().int().min(1).max(10_000).default(1_000),
        /** Messages held in memory waiting for a connection, at most. */
        maxQueued: z.number().int().min(1).default(5_000),
        /** How often each MX path's pace is measured: a path keeps queued what it sends in 6 of these at its pace, the rest waits in the database (a tarpitting MX would otherwise fill maxQueued and hold every other domain). */
        holdHorizonMs: z.number().int().min(100).max(600_000).default(10_000),
        /** A claim not written back within this time returns to pending (crash of another node). */
        claimLeaseSeconds: timerDuration(1_000).min(10).default(600),
        /** Until MX rules exist: connections per MX host. */
        maxConnectionsPerMx: z.number().int().min(1).max(1_000).default(10),
        /** Messages sent on one connection before it is closed and reopened. */
        maxMessagesPerConnection: z.number().int().min(1).default(100),
        /** A closed connection keeps its slot this long: the MX counts it until it has read our FIN. */
        connectionCloseGraceMs: z.number().int().min(0).max(10_000).default(100),
        connectTimeoutMs: timerDuration(1).min(100).default(30_000),
        commandTimeoutMs: timerDuration(1).min(100).default(60_000),
        /** RFC 5321 §4.5.3.2.6 suggests 10 minutes after the final dot. */
        dataTimeoutMs: timerDuration(1).min(100).default(600_000),
        /** Seconds to wait before each retry of a soft (or ignored) failure; the last value repeats until validity ends.
         *  Default: 5 retries an hour apart on the first day, then one a day until delivery.validityHours. */
        retryDelaysSeconds: z.array(z.number().int().min(1)).min(1).default([3600, 3600, 3600, 3600, 3600, 86400]),
        /** Greylisting (a soft reply of category `onhold`: "450 4.7.1 Greylisted, try again in 300 seconds"): the first
         *  three attempts of a message are retried after the delay the reply asks for (60 s to 1 h), else after this many
         *  seconds, never later than retryDelaysSeconds would; greylisting servers accept the retry after a few minutes. */
        greylistRetrySeconds: z.number().int().min(1).default(300),
        /** Use STARTTLS when the MX offers it; certificates are not verified (MX hosts rarely have valid ones); a failed handshake falls back to plain text on a new connection. */
        opportunisticTls: z.boolean().default(true),
        /** Static routes, checked before DNS. */
        routes: z.array(routeSchema).default([]),
        /** DNS servers as `ip` or `ip:port`; empty uses the system resolver. */
        resolverServers: z.array(z.string()).default([]),
        /** Upper bound on how long a DNS answer (MX hosts, their A/AAAA addresses) is cached, whatever its TTL: a provider moving its MX is followed within this time. Wins over mxCacheMinSeconds. */
        mxCacheMaxSeconds: z.number().int().min(0).default(3_600),
        /** Lower bound on the same: an A/AAAA answer with a TTL of 0 or 5 s is still kept this long, or every few messages would make a query. */
        mxCacheMinSeconds: z.number().int().min(1).default(60),
        /** How long MX records are cached (within the two bounds above): node's resolver does not give their TTL, so this stands for it; a caching resolver in front (mta.resolverServers) answers the re-asks by the real TTL. */
        mxRecordCacheSeconds: z.number().int().min(1).default(300),
        /** How long an NXDOMAIN or NODATA answer (no such domain, no MX and no address, a host without address) is cached; RFC 2308 §5 asks for at most 3 hours. Node's resolver does not give the zone's SOA minimum, so this stands for it. */
        mxNegativeCacheSeconds: z.number().int().min(1).max(10_800).default(300),
        /** When DNS fails for a name (SERVFAIL, timeout) after a good answer, that answer is still used this long past its TTL (RFC 8767 serve-stale; 0: never), asked again every 10 s meanwhile; after it, the domain's messages are deferred (dns_temporary). */
        mxStaleMaxSeconds: z.number().int().min(0).max(604_800).default(86_400),
        /** MX hosts tried per attempt, by preference (Postfix's smtp_mx_address_limit is 5): a domain publishing hundreds of MX hosts that never answer would hold each attempt for that many connect timeouts. */
        maxMxHosts: z.number().int().min(1).max(100).default(5),
        /** Addresses (A, then AAAA) of one MX host tried before its messages go to the next MX host, when the first cannot be reached (refused, timeout, 421 at the greeting). RFC 5321 §5.1 asks for at least two; each silent one costs a connect timeout. */
        maxAddressesPerMxHost: z.number().int().min(1).max(16).default(2),
        /** Connect to MX hosts that DNS puts at loopback, private (RFC 1918, CGNAT, unique local), link-local (cloud metadata) or unspecified addresses. Off: anyone can point their domain's MX at Herald's internal network. Routes always apply. */
        allowPrivateMxAddresses: z.boolean().default(false),
        /** DNS queries (MX, A, AAAA) in flight at most; the others wait their turn. A batch to many domains otherwise sends them all at once and the resolver drops what it cannot hold. */
        dnsConcurrency: z.number().int().min(1).max(10_000).default(64),
        dkim: z.array(dkimKeySchema).default([]),
        /** Sign DKIM in worker threads (0 = on the main thread; `auto` = the machine's cores, at most 4). RSA-2048 on 2 cores: 2 workers sign 12–18 % more messages/s than 1 (docs/performance.md); unused when no key is configured. */
        dkimWorkers: z.union([z.literal('auto'), z.number().int().min(0).max(16)]).default('auto'),
        /** How often the MTA looks for due messages when none is due sooner (it also wakes at the earliest due time). */
        pollIntervalMs: z.number().int().min(10).max(600_000).default(5_000),
      })
      .strict()
      .default({}),
    import: z
      .object({
        /** Largest CSV accepted, in bytes. */
        maxFileBytes: z
          .number()
          .int()
          .min(1)
          .default(2 * 1024 * 1024 * 1024),
        /** Longest CSV record accepted, in bytes. */
        maxRecordBytes: z
          .number()
          .int()
          .min(64)
          .default(64 * 1024),
        /** Liveness lease of a running import, renewed every third of it: an import not renewed for this long belongs to a dead process, and the next import fails it (staged rows deleted) at once. */
        leaseSeconds: z.number().int().min(10).max(86_400).default(60),
      })
      .strict()
      .default({}),
    workflows: z
      .object({
        /** IANA time zone of every workflow schedule ("04:00" is 04:00 there, DST included). */
        timezone: z.string().min(1).default('UTC'),
        /** Per workflow: `schedule` (cron, replaces the built-in one) and `enabled` (false: never scheduled). */
        overrides: z
          .record(
            z.string(),
            z.object({ schedule: z.string().min(1).optional(), enabled: z.boolean().default(true) }).strict(),
          )
          .default({}),
        /** Runs, steps and step logs older than this are deleted by `cleanup` (each workflow's last run is kept). */
        historyDays: z.number().int().min(1).default(30),
        /** POSTed a JSON notification when a run fails; unset: failures are only logged and shown. */
        webhookUrl: z.string().url().optional(),
        /** A node that stops renewing its lease for this long is presumed dead; another node may take over. */
        leaseSeconds: timerDuration(1_000).min(10).default(120),
        /** How often the engine checks schedules. */
        tickSeconds: timerDuration(1_000).min(1).default(15),
        /** A workflow paused longer than this is reported unhealthy. */
        pausedTooLongDays: z.number().min(0).default(7),
        /** Log lines kept per run: the first half and the last half, with a line saying how many were dropped between them. */
        logLinesPerRun: z.number().int().min(10).max(100_000).default(2_000),
        cleanup: z
          .object({
            /** Rows deleted per transaction: keeps every write lock short so the MTA is never blocked long. */
            batchSize: z.number().int().min(100).max(100_000).default(5_000),
            deliveryLogsDays: z.number().int().min(1).default(180),
            trackingLogsDays: z.number().int().min(1).default(365),
            /** Deliveries in state `deleted` are purged (with their logs) after this long. */
            deletedDeliveriesDays: z.number().int().min(0).default(7),
            importRejectsDays: z.number().int().min(1).default(30),
            /** A running import that has recorded no progress for this long (a live one does with every batch) is taken for interrupted: failed, its staged rows deleted. */
            staleImportHours: z.number().min(0.25).default(6),
            /** Inbound samples and undecided (to_qualify) qualification entries not seen for this long are deleted. */
            qualificationSamplesDays: z.number().int().min(1).default(90),
            /** Identities of received bounce mails (a retried mail is applied once) are kept this long: longer than senders retry (RFC 5321 §4.5.4.1: 4–5 days). */
            inboundMessagesDays: z.number().int().min(1).default(10),
            /** Address timeline rows (address_events) older than this are deleted; keep it ≥ tracking.tokenTtlDays. */
            addressEventsDays: z.number().int().min(1).default(400),
            /** PostgreSQL: an index whose estimated bloat passes this fraction is rebuilt (REINDEX CONCURRENTLY). */
            reindexBloatRatio: z.number().min(0.1).max(0.95).default(0.5),
            /** PostgreSQL: indexes smaller than this are never rebuilt, whatever their bloat. */
            reindexMinBytes: z
              .number()
              .int()
              .min(0)
              .default(8 * 1024 * 1024),
          })
          .strict()
          .default({}),
        /** An in-progress delivery with no delivery log update for this long is flagged delayed. */
        delayedAfterMinutes: z.number().int().min(1).default(30),
        /** A delivery `preparing` with no progress for this long (a live preparation records some with every batch) is taken for interrupted by delivery-manager: failed, its logs deleted. */
        stalePreparationMinutes: z.number().min(1).default(30),
      })
      .strict()
      .default({}),
    shaping: shapingSchema.default({}),
    /** Mid-sourcing: hand deliveries to execution instances over HTTP (docs/midsourcing.md). */
    midsourcing: midsourcingSchema.default({}),
    tracking: trackingSchema.default({}),
    /** The HTTP API (role `api`, docs/api.md). */
    api: apiSchema.default({}),
    /** Prometheus /metrics (docs/metrics.md). */
    metrics: metricsSchema.default({}),
    /** Event webhooks, sent by the api role (docs/webhooks.md). */
    webhooks: webhooksSchema.default({}),
    /** Where the deliverability-update workflow loads rule packs from (docs/deliverability-update.md). */
    deliverability: deliverabilitySchema.default({}),
    bounce: z
      .object({
        /** Site bounce rules layered over the shipped pack; `herald bounce qualify` writes here (created as needed). */
        siteRulesFile: z.string().min(1).default('./rules/site/bounce.yaml'),
        /** How often running roles check the site rule file; a valid change is swapped in, a broken one is logged and ignored. */
        reloadCheckMs: timerDuration(1).min(100).default(5_000),
        /** Unmatched replies are counted in memory and written to the qualification table this often (never per message). */
        qualificationFlushMs: timerDuration(1).min(50).default(5_000),
      })
      .strict()
      .default({}),
    quarantine: z
      .object({
        /** Soft errors (counted at most once per UTC day) that quarantine an address. */
        softErrorsToQuarantine: z.number().int().min(1).default(5),
        /** The soft error counter restarts after this many days without error. */
        errorResetDays: z.number().int().min(1).default(10),
        /** Addresses quarantined for mailbox_full are released after this many days. */
        mailboxFullReleaseDays: z.number().int().min(1).default(30),
        /** How often the MTA role runs the sweep (resets and mailbox_full releases). */
        sweepIntervalMinutes: timerDuration(60_000).min(1).default(60),
        /** A domain answering most of a batch with hard failures (user unknown) is judged, not its addresses (docs/quarantine.md). */
        massRejection: z
          .object({
            /** Off: every hard reply quarantines its address, whatever the rest of the domain gets. */
            enabled: z.boolean().default(true),
            /** Messages a domain must have answered in the window before the guard can trip. */
            minMessages: z.number().int().min(1).default(50),
            /**
             * Fraction of those answered with a hard failure that trips it: a healthy list sees a few percent, a
             * decayed segment of an old list seldom most of a domain; a broken ISP refuses (nearly) everyone.
             */
            hardRatio: z.number().gt(0).max(1).default(0.8),
            windowMinutes: z.number().int().min(1).default(60),
            /** Then: the domain is suspended, its hard replies are not applied to addresses, and what the window quarantined is released. */
            suspendMinutes: z.number().int().min(1).default(180),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    inbound: z
      .object({
        /** Address the inbound SMTP role (bounces, feedback reports) listens on. */
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(2525),
        /** Largest message accepted (announced with SIZE, RFC 1870, and enforced while reading). */
        maxMessageBytes: z
          .number()
          .int()
          .min(1_024)
          .default(25 * 1024 * 1024),
        /**
         * Bytes of message content held at once, all connections together; a message that would pass it is
         * answered 452 4.3.1 (the sender retries). Without it, 50 clients sending 24 MB each took 1.2 GB.
         */
        maxBufferedBytes: z
          .number()
          .int()
          .min(1_024)
          .default(100 * 1024 * 1024),
        /** Simultaneous SMTP connections, at most. */
        maxClients: z.number().int().min(1).default(50),
        /** Simultaneous connections of one client address; more get 421 4.7.0 at once (one client cannot fill maxClients). */
        maxConnectionsPerClient: z.number().int().min(1).default(5),
        /** A session is closed (421 4.4.2) this long after it connected, however slowly it talks. */
        sessionTimeoutSeconds: timerDuration(1_000).min(1).default(600),
        /** Commands a session may send without a message being accepted; then 421 4.7.0 and closed. */
        maxCommandsWithoutMessage: z.number().int().min(5).default(100),
        /** Messages one client IP may send per minute; more get 421 4.7.0 (try later). */
        messagesPerMinutePerClient: z.number().int().min(1).default(120),
        /**
         * The two limits above count an IPv6 client by this prefix of its address (an IPv4 one by its address):
         * each host is handed a whole /64, and counted address by address it could open 2^64 times the limit.
         */
        ipv6ClientPrefixLength: z.number().int().min(16).max(128).default(64),
        /**
         * Clients whose messages of the current minute are counted, at most (about 250 bytes each). While that
         * many have sent this minute, a new client is answered 421 4.7.0 at MAIL FROM until the minute ends:
         * clients already counted are never forgotten early, so a sender with many addresses cannot push its
         * own count out and start over, and cannot grow memory without bound either.
         */
        maxTrackedClients: z.number().int().min(100).default(100_000),
        /**
         * STARTTLS with this certificate (PEM files; the key must be the certificate's), offered and never
         * required: senders' TLS is opportunistic, and a bounce domain with an enforcing MTA-STS policy needs
         * it. null: no STARTTLS. The files are checked for changes every minute and a renewal is served
         * without a restart.
         */
        tls: z
          .object({
            certFile: z.string().min(1),
            keyFile: z.string().min(1),
            /** Oldest TLS version accepted. */
            minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
          })
          .strict()
          .nullable()
          .default(null),
        /** An extra accepted recipient for ISP feedback loops (RFC 5965 reports), '' = none. */
        feedbackAddress: z.string().default(''),
        /** Local part prefix of VERP addresses: <prefix>+<log id>-<mac>@mta.bounceDomain (the MTA sends with it too). */
        verpPrefix: z.string().min(1).default('bounce'),
        /** Bytes of a message kept in a sample (unparseable, unmatched, not a bounce). */
        sampleBytes: z
          .number()
          .int()
          .min(1_024)
          .default(64 * 1024),
        /**
         * Samples kept, newest first; older ones are deleted. Mail to postmaster@ / abuse@ (anyone can send it) keeps
         * this many of its own, so a flood of it cannot push out the samples of real bounces.
         */
        keepSamples: z.number().int().min(1).default(1_000),
      })
      .strict()
      .default({}),
  })
  .strict();

export type HeraldConfig = z.infer<typeof configSchema>;
export type RouteConfig = z.infer<typeof routeSchema>;
export type DkimKeyConfig = z.infer<typeof dkimKeySchema>;
export type ShapingConfig = z.infer<typeof shapingSchema>;
export type { TrackingConfig } from '../tracking/config-schema.ts';
