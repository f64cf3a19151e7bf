import { Type, type TProperties, type TSchema } from '@sinclair/typebox';
import { minValidityHours, shareLimits } from '../delivery/definition.ts';
import { maxOverlapHours, webhookKinds } from '../webhooks/subscriptions.ts';

// The JSON shapes of the API, shared by the routes table (routes.ts) and so by the OpenAPI document.
// Request objects refuse unknown fields; responses describe what the domain functions return.

const strict = { additionalProperties: false } as const;
/** A response object whose listed fields are guaranteed; more may be added later (never renamed). */
const open = { additionalProperties: true } as const;

export const nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const isoTime = Type.String({ format: 'date-time' });
/** A string enum (`enum` in the OpenAPI document), typed as the union of its values. */
const oneOf = <const T extends readonly string[]>(values: T, description?: string) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...(description && { description }) });
const counts = Type.Record(Type.String(), Type.Integer());

export const idParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) }, strict);
/** A workflow, list or token name in a path: no slash, no dot-dot, nothing to traverse with. */
export const nameParams = Type.Object({ name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$' }) }, strict);
export const emailParams = Type.Object(
  { email: Type.String({ minLength: 3, maxLength: 320, pattern: '^[^/\\s]+@[^/\\s]+$' }) },
  strict,
);
export const tokenIdParams = Type.Object({ tokenId: Type.String({ pattern: '^[A-Za-z0-9]{12}$' }) }, strict);
export const emptyQuery = Type.Object({}, strict);
export const noteBody = Type.Object({ note: Type.Optional(Type.String({ maxLength: 1_000 })) }, strict);

export const pageQuery = <T extends TProperties>(extra: T) =>
  Type.Object(
    {
      ...extra,
      after: Type.Optional(
        Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'the `next` of the previous page' }),
      ),
      limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 100 })),
    },
    strict,
  );

export const deliveryState = oneOf([
  'edited',
  'preparing',
  'prepared',
  'preparation_failed',
  'start_pending',
  'in_progress',
  'paused',
  'stopped',
  'finished',
  'failed',
  'deleted',
] as const);

export const delivery = Type.Object(
  {
    id: Type.Integer(),
    name: Type.String(),
    state: deliveryState,
    from: Type.String(),
    listId: nullable(Type.Integer()),
    targetCount: nullable(Type.Integer()),
    excludedCount: Type.Integer(),
    validUntil: nullable(isoTime),
    scheduledAt: nullable(isoTime),
    lastError: nullable(Type.String()),
    priority: Type.Integer(),
    weight: Type.Integer(),
  },
  open,
);

const priority = Type.Integer({
  minimum: shareLimits.priority.min,
  maximum: shareLimits.priority.max,
  description: 'higher sends first on a shared MX path',
});
const weight = Type.Integer({
  minimum: shareLimits.weight.min,
  maximum: shareLimits.weight.max,
  description: 'share of a path among deliveries of the same priority',
});

export const shareBody = Type.Object({ priority: Type.Optional(priority), weight: Type.Optional(weight) }, strict);

export const deliveryDefinition = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    from: Type.String({ minLength: 3, maxLength: 320, description: 'news@example.com or "Name <news@example.com>"' }),
    fromName: Type.Optional(Type.String({ maxLength: 200 })),
    replyTo: Type.Optional(Type.String({ maxLength: 320 })),
    subject: Type.String({ minLength: 1, maxLength: 2_000, description: 'Liquid template' }),
    html: Type.Optional(Type.String({ description: 'Liquid template' })),
    text: Type.Optional(Type.String({ description: 'Liquid template' })),
    list: Type.Optional(Type.String({ minLength: 1, description: 'name of the target list' })),
    validityHours: Type.Optional(Type.Number({ minimum: minValidityHours, maximum: 720 })),
    affinity: Type.Optional(Type.String({ minLength: 1 })),
    priority: Type.Optional(priority),
    weight: Type.Optional(weight),
    scheduledAt: Type.Optional(Type.String({ format: 'date-time' })),
  },
  strict,
);

export const definitionCheck = Type.Object(
  {
    valid: Type.Literal(true),
    name: Type.String(),
    fromAddress: Type.String(),
    listName: nullable(Type.String()),
  },
  open,
);

export const deliverySummary = Type.Object(
  {
    deliveryId: Type.Integer(),
    name: Type.String(),
    state: deliveryState,
    total: Type.Integer(),
    sent: Type.Integer(),
    failed: Type.Integer(),
    ignored: Type.Integer(),
    pending: Type.Integer(),
    cancelled: Type.Integer(),
    excluded: Type.Integer(),
    exclusions: counts,
    retried: Type.Integer(),
    byReason: counts,
    lastError: nullable(Type.String()),
    preparationWarnings: Type.Array(
      Type.Object(
        {
          code: Type.Literal('LINK_REFUSED'),
          link: nullable(
            Type.Integer({
              description: 'the tracked link, counted from 1; null: a link with data-herald-track="off"',
            }),
          ),
          urlTemplate: Type.String(),
          variables: Type.Array(Type.String(), { description: 'the fields the href prints' }),
          recipients: Type.Integer({ description: 'recipients whose message went without this href' }),
          example: Type.Object({ recipient: Type.String(), value: Type.String(), reason: Type.String() }, open),
          message: Type.String(),
        },
        open,
      ),
      { description: 'links recipient data made into something not sent as a link (javascript:, data:…)' },
    ),
  },
  open,
);

const etaGroup = Type.Object(
  {
    rateKey: Type.String({ description: 'the budget messages share: `rule|shared` or `rule|id<publicId>`' }),
    rule: Type.String(),
    pending: Type.Integer(),
    ahead: Type.Integer({ description: 'messages of deliveries started earlier that this rate key sends first' }),
    domains: Type.Array(Type.String(), { description: 'the first 20 domains of the rate key, by name' }),
    domainCount: Type.Integer({ description: 'every domain of the rate key' }),
    messagesPerHour: Type.Number({ description: "the rule's rate × backoff × accepted share" }),
    configuredMessagesPerHour: Type.Number(),
    backoffFactor: Type.Number(),
    acceptedShare: Type.Number(),
    hours: Type.Number(),
  },
  open,
);

export const deliveryEta = Type.Object(
  {
    deliveryId: Type.Integer(),
    computedAt: Type.String({ format: 'date-time' }),
    pending: Type.Integer(),
    finishAt: nullable(Type.String({ format: 'date-time' })),
    hours: nullable(Type.Number({ description: 'null: nothing can send (a rate of 0)' })),
    boundBy: nullable(
      Type.Object(
        { rule: Type.String(), rateKey: Type.String(), messagesPerHour: Type.Number() },
        { ...open, description: 'the MX rule budget that finishes last: what bounds the delivery' },
      ),
    ),
    validUntil: nullable(Type.String({ format: 'date-time' })),
    expiring: Type.Integer({ description: 'messages that cannot go before the validity ends' }),
    groups: Type.Array(etaGroup, { description: 'the 50 slowest rate keys, slowest first' }),
    groupsOmitted: Type.Integer({ description: 'rate keys not listed in groups (each finishes sooner)' }),
  },
  open,
);

export const deliveryDetail = Type.Object(
  {
    delivery,
    summary: deliverySummary,
    eta: nullable(
      Type.Object(deliveryEta.properties, {
        ...open,
        description:
          'estimated finish of a prepared, scheduled, in-progress or paused delivery and what bounds it; null otherwise',
      }),
    ),
  },
  open,
);

export const preparationOutcome = Type.Union([
  Type.Object(
    {
      kind: Type.Literal('prepared'),
      deliveryId: Type.Integer(),
      counts: Type.Object({ target: Type.Integer(), prepared: Type.Integer(), excluded: counts }, open),
    },
    open,
  ),
  Type.Object(
    { kind: Type.Literal('failed'), deliveryId: Type.Integer(), error: Type.String(), code: Type.String() },
    open,
  ),
]);

export const restartBody = Type.Object(
  {
    fromStep: Type.Optional(
      Type.Union([Type.Integer({ minimum: 0, maximum: 1_000 }), Type.String({ minLength: 1, maxLength: 200 })], {
        description: 'step index or name to restart from; default the last run’s failed step',
      }),
    ),
  },
  strict,
);

export const startBody = Type.Object(
  {
    at: Type.Optional(
      Type.String({
        format: 'date-time',
        description:
          'start later (ISO 8601 with its offset); default the scheduledAt of the definition when still to come, else now',
      }),
    ),
  },
  strict,
);

export const deliveryAction = Type.Object(
  {
    delivery,
    forwarding: nullable(
      Type.Object(
        { kind: Type.String(), deliveryId: Type.Integer() },
        { ...open, description: 'mid-sourcing: the forwarding of the action to the execution instance' },
      ),
    ),
  },
  open,
);

export const deliveryLogStatus = oneOf(['pending', 'sending', 'sent', 'failed', 'ignored', 'cancelled'] as const);

export const deliveryLogsQuery = pageQuery({
  status: Type.Optional(deliveryLogStatus),
  domain: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  failureReason: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  email: Type.Optional(Type.String({ minLength: 3, maxLength: 320 })),
});

export const deliveryLog = Type.Object(
  {
    id: Type.Integer(),
    email: Type.String(),
    domain: Type.String(),
    status: deliveryLogStatus,
    attempts: Type.Integer(),
    nextAttemptAt: nullable(isoTime),
    lastReplyCode: nullable(Type.Integer()),
    lastEnhancedStatus: nullable(Type.String()),
    lastReplyText: nullable(Type.String()),
    failureType: nullable(Type.String()),
    failureReason: nullable(Type.String()),
    failureCategory: nullable(Type.String()),
    mxHost: nullable(Type.String()),
    sentAt: nullable(isoTime),
    updatedAt: isoTime,
  },
  open,
);

/** A keyset page: `next` is the `after` of the following page, null on the last one. */
export const page = <T extends TSchema>(item: T) =>
  Type.Object({ items: Type.Array(item), next: nullable(Type.Integer()) }, open);

export const deliveryList = Type.Object(
  {
    deliveries: Type.Array(delivery),
    next: nullable(Type.Integer({ description: 'the `before` of the following (older) page; null on the last' })),
  },
  open,
);
export const deliveryListQuery = Type.Object(
  {
    before: Type.Optional(
      Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'the `next` of the previous page' }),
    ),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 100 })),
  },
  strict,
);

export const finding = Type.Object(
  {
    check: Type.String(),
    severity: Type.String(),
    subject: Type.String(),
    symptom: Type.String(),
    cause: Type.String(),
    fix: Type.String(),
    evidence: Type.Record(Type.String(), Type.Unknown()),
  },
  open,
);

export const diagnosis = Type.Object(
  { checkedAt: isoTime, checks: Type.Array(Type.String()), findings: Type.Array(finding) },
  open,
);

export const addressState = oneOf(['valid', 'with_errors', 'quarantined', 'denylisted', 'allowlisted'] as const);

export const address = Type.Object(
  {
    email: Type.String(),
    state: addressState,
    errorCount: Type.Integer(),
    lastErrorAt: nullable(isoTime),
    reason: nullable(Type.String()),
    updatedAt: nullable(isoTime),
  },
  open,
);

export const quarantineQuery = Type.Object(
  {
    state: Type.Optional(addressState),
    domain: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 100 })),
    after: Type.Optional(Type.String({ minLength: 3, maxLength: 400 })),
  },
  strict,
);

export const quarantineList = Type.Object(
  { counts, addresses: Type.Array(address), next: nullable(Type.String()) },
  open,
);

export const addressEvent = Type.Object(
  {
    at: isoTime,
    source: Type.String(),
    deliveryId: nullable(Type.Integer()),
    stateBefore: Type.String(),
    stateAfter: Type.String(),
    note: nullable(Type.String()),
  },
  open,
);

export const addressTimeline = Type.Object({ address, timeline: Type.Array(addressEvent) }, open);

export const releaseOneBody = Type.Object(
  { note: Type.Optional(Type.String({ maxLength: 1_000 })), dryRun: Type.Optional(Type.Boolean()) },
  strict,
);

export const releaseDomainBody = Type.Object(
  {
    domain: Type.String({ minLength: 1, maxLength: 255 }),
    since: Type.String({ minLength: 10, maxLength: 40, description: 'ISO date or date-time' }),
    note: Type.Optional(Type.String({ maxLength: 1_000 })),
    dryRun: Type.Optional(Type.Boolean()),
  },
  strict,
);

export const releaseResult = Type.Object(
  { released: Type.Integer(), dryRun: Type.Boolean(), sample: Type.Array(Type.String()) },
  open,
);

export const listSummary = Type.Object(
  { id: Type.Integer(), name: Type.String(), recipients: Type.Integer(), createdAt: isoTime },
  open,
);
export const listList = Type.Object({ lists: Type.Array(listSummary) }, open);

export const importView = Type.Object(
  {
    importId: Type.Integer(),
    list: Type.String(),
    file: Type.String(),
    state: Type.Union([Type.Literal('running'), Type.Literal('finished'), Type.Literal('failed')]),
    read: Type.Integer(),
    imported: Type.Integer(),
    updated: Type.Integer(),
    rejected: Type.Integer(),
    error: nullable(Type.String()),
    startedAt: isoTime,
    finishedAt: nullable(isoTime),
  },
  open,
);

export const importReject = Type.Object(
  { line: Type.Integer(), reason: Type.String(), message: nullable(Type.String()), excerpt: Type.String() },
  open,
);

export const importQuery = Type.Object(
  {
    file: Type.Optional(
      // Not "." or "..": joined to the upload's own folder, they named that folder or its parent (500).
      Type.String({ pattern: '^(?!\\.{1,2}$)[^/\\\\]{1,200}$', description: 'a name to remember the upload by' }),
    ),
  },
  strict,
);

export const workflowStatus = Type.Object(
  {
    name: Type.String(),
    description: Type.String(),
    state: Type.String(),
    health: Type.String(),
    schedule: Type.String(),
    enabled: Type.Boolean(),
    nextRunAt: nullable(isoTime),
    lastSuccessAt: nullable(isoTime),
    lastError: nullable(Type.String()),
  },
  open,
);
export const workflowList = Type.Object({ workflows: Type.Array(workflowStatus) }, open);
export const workflowDetail = Type.Object(
  {
    name: Type.String(),
    state: Type.String(),
    health: Type.String(),
    steps: Type.Array(Type.Object({ index: Type.Integer(), name: Type.String() }, open)),
    lastRunSteps: Type.Array(Type.Object({ index: Type.Integer(), name: Type.String(), status: Type.String() }, open)),
    runs: Type.Array(Type.Object({ id: Type.Integer(), status: Type.String(), startedAt: isoTime }, open)),
  },
  open,
);
export const runsQuery = Type.Object(
  { runs: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000, default: 10 })) },
  strict,
);
export const runResult = Type.Object(
  {
    workflow: Type.String(),
    runId: Type.Integer(),
    status: Type.String(),
    error: nullable(Type.String()),
    durationMs: Type.Integer(),
  },
  open,
);
export const pauseResult = Type.Object({ name: Type.String(), changed: Type.Boolean(), state: Type.String() }, open);
export const logsQuery = Type.Object(
  { run: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })) },
  strict,
);
export const workflowLogs = Type.Object(
  {
    logs: Type.Array(
      Type.Object(
        {
          runId: Type.Integer(),
          step: Type.Integer(),
          stepName: Type.String(),
          level: Type.String(),
          at: isoTime,
          message: Type.String(),
        },
        open,
      ),
    ),
  },
  open,
);

export const mxStatsQuery = Type.Object(
  { maxAge: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400, default: 300 })) },
  strict,
);
export const anyObject = Type.Object({}, open);
export const mxMatchQuery = Type.Object(
  {
    host: Type.String({ minLength: 1, maxLength: 255, pattern: '^[A-Za-z0-9.*_-]+$' }),
    publicId: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 })),
  },
  strict,
);
export const mxMatch = Type.Object(
  {
    host: Type.String(),
    publicId: Type.Integer(),
    rule: Type.String(),
    maxConnections: Type.Number(),
    maxMessagesPerHour: Type.Number(),
    maxMessagesPerConnection: Type.Number(),
  },
  open,
);

export const ruleKind = Type.Union([Type.Literal('mx'), Type.Literal('bounce')]);
export const ruleVersionsQuery = Type.Object(
  { kind: Type.Optional(ruleKind), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000, default: 50 })) },
  strict,
);
export const ruleVersions = Type.Object(
  {
    versions: Type.Array(
      Type.Object(
        {
          id: Type.Integer(),
          kind: ruleKind,
          version: Type.String(),
          active: Type.Boolean(),
          source: Type.String(),
          createdAt: isoTime,
          diff: anyObject,
        },
        open,
      ),
    ),
  },
  open,
);
export const rulesUpdateBody = Type.Object(
  {
    source: Type.Optional(
      Type.String({ minLength: 1, maxLength: 2_000, description: 'instead of deliverability.source' }),
    ),
  },
  strict,
);
export const rulesRollbackBody = Type.Object({ kind: ruleKind }, strict);

export const databaseStatus = Type.Object(
  {
    dialect: Type.String(),
    location: Type.String(),
    sizeBytes: Type.Number(),
    tables: Type.Array(Type.Object({ name: Type.String(), rows: Type.Number() }, open)),
  },
  open,
);

export const apiRole = Type.Union([Type.Literal('viewer'), Type.Literal('operator'), Type.Literal('admin')]);
export const token = Type.Object(
  {
    tokenId: Type.String(),
    name: Type.String(),
    role: apiRole,
    createdAt: isoTime,
    lastUsedAt: nullable(isoTime),
    revokedAt: nullable(isoTime),
  },
  open,
);
export const tokenList = Type.Object({ tokens: Type.Array(token) }, open);
export const tokenCreateBody = Type.Object(
  { role: apiRole, name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })) },
  strict,
);
export const createdToken = Type.Object(
  { token: Type.String({ description: 'shown once: store it now' }), tokenId: Type.String(), role: apiRole },
  open,
);

export const auditEntry = Type.Object(
  {
    id: Type.Integer(),
    at: isoTime,
    tokenId: nullable(Type.String()),
    role: nullable(Type.String()),
    method: Type.String(),
    route: Type.String(),
    path: Type.String(),
    status: Type.Integer(),
    errorCode: nullable(Type.String()),
    client: nullable(Type.String()),
  },
  open,
);
export const auditQuery = Type.Object(
  {
    before: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 100 })),
  },
  strict,
);

export const health = Type.Object({ status: Type.Literal('ok') }, open);
export const readiness = Type.Object(
  {
    status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
    pendingMigrations: Type.Array(Type.String()),
    /** Why not ready when the database could not be checked (unreachable, or silent past the deadline). */
    reason: Type.Optional(Type.String()),
  },
  open,
);
export const openApiDocument = Type.Object({ openapi: Type.String(), info: anyObject, paths: anyObject }, open);

export const previewQuery = Type.Object({ email: Type.String({ minLength: 3, maxLength: 320 }) }, strict);
export const preview = Type.Object(
  {
    deliveryId: Type.Integer(),
    email: Type.String(),
    subject: Type.String(),
    html: nullable(Type.String()),
    text: nullable(Type.String()),
  },
  open,
);
export const indicators = Type.Object(
  {},
  { ...open, description: 'tracking indicators (see herald delivery stats --json)' },
);

export const qualificationStatus = oneOf(['to_qualify', 'keep', 'ignore', 'all'] as const);
export const qualificationQuery = Type.Object(
  {
    status: Type.Optional(qualificationStatus),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 50 })),
  },
  strict,
);
export const qualificationEntry = Type.Object(
  {
    id: Type.Integer(),
    count: Type.Integer(),
    status: Type.String(),
    replyCode: nullable(Type.Integer()),
    enhancedStatus: nullable(Type.String()),
    pattern: Type.String(),
    example: Type.String(),
    firstSeenAt: isoTime,
    lastSeenAt: isoTime,
  },
  open,
);
export const qualificationList = Type.Object({ entries: Type.Array(qualificationEntry) }, open);
export const qualifyBody = Type.Object(
  {
    category: Type.String({
      minLength: 1,
      maxLength: 64,
      description: 'bounce category: userunknown, mailboxfull, blocked…',
    }),
    ruleId: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,99}$' })),
    reason: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    type: Type.Optional(oneOf(['hard', 'soft', 'ignored'] as const)),
  },
  strict,
);
export const qualified = Type.Object(
  {
    id: Type.Integer(),
    ruleId: Type.String(),
    category: Type.String(),
    packVersion: Type.String(),
    status: Type.Literal('keep'),
  },
  open,
);
export const ignored = Type.Object({ id: Type.Integer(), status: Type.Literal('ignore') }, open);

export const rulesCheckBody = Type.Object(
  {
    files: Type.Array(
      Type.Object(
        { name: Type.String({ minLength: 1, maxLength: 200 }), content: Type.String({ maxLength: 512 * 1024 }) },
        strict,
      ),
      { minItems: 1, maxItems: 20 },
    ),
    standalone: Type.Optional(Type.Boolean({ description: 'without the shipped pack underneath' })),
  },
  strict,
);
export const rulesCheck = Type.Object(
  {
    ok: Type.Boolean(),
    files: Type.Array(Type.Object({ file: Type.String(), ok: Type.Boolean(), issues: Type.Array(anyObject) }, open)),
    layered: nullable(anyObject),
  },
  open,
);

export const suppressBody = Type.Object(
  {
    addresses: Type.Array(Type.String({ minLength: 1, maxLength: 320 }), { minItems: 1, maxItems: 10_000 }),
    note: Type.Optional(Type.String({ maxLength: 1_000 })),
  },
  strict,
);
export const suppressResult = Type.Object({ events: Type.Integer(), addresses: Type.Integer(), entered: counts }, open);

export const webhookKind = oneOf(webhookKinds);
export const webhook = Type.Object(
  {
    id: Type.Integer(),
    url: Type.String(),
    events: Type.Array(webhookKind),
    state: oneOf(['active', 'paused'] as const),
    consecutiveFailures: Type.Integer(),
    lastError: nullable(Type.String()),
    lastSuccessAt: nullable(isoTime),
    pausedAt: nullable(isoTime),
    previousSecretUntil: nullable(isoTime),
    createdAt: isoTime,
    backlog: Type.Integer({ description: 'events waiting in the outbox' }),
  },
  open,
);
export const webhookList = Type.Object({ webhooks: Type.Array(webhook) }, open);
export const webhookCreateBody = Type.Object(
  {
    url: Type.String({ minLength: 8, maxLength: 2_000, pattern: '^https?://' }),
    events: Type.Array(webhookKind, { minItems: 1, maxItems: 10 }),
    secret: Type.Optional(Type.String({ minLength: 16, maxLength: 200, description: 'default: generated' })),
  },
  strict,
);
export const webhookRotateBody = Type.Object(
  {
    secret: Type.Optional(Type.String({ minLength: 16, maxLength: 200, description: 'default: generated' })),
    overlapHours: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: maxOverlapHours,
        description: 'hours the previous secret keeps signing too (default 24; 0: stops at once)',
      }),
    ),
  },
  strict,
);
export const createdWebhook = Type.Object(
  { id: Type.Integer(), url: Type.String(), secret: Type.String({ description: 'HMAC key: shown once' }) },
  open,
);
