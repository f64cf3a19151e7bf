import type { Finding, Severity } from '../../doctor/finding.ts';
import { outboundStatuses } from '../../midsourcing/status.ts';
import { listVersions } from '../../rules-versions/rule-version-store.ts';
import { ruleVersionView } from '../../rules-versions/versions-view.ts';
import { formatDiff } from '../../rules-versions/diff.ts';
import { readMxStats } from '../../shaping/mx-view.ts';
import { omittedNote } from '../../shaping/stats-view.ts';
import { runMaintenance } from '../../workflows/maintenance.ts';
import type { WebRoutes } from '../dashboard.ts';
import type { LiveTicks } from '../live-ticks.ts';

// Doctor, MX rules and paths, database and mid-sourcing: the same functions as `herald doctor`,
// `herald mx stats`, `herald rules versions`, `herald db status|maintain` and `herald mid status`.

const severities: readonly Severity[] = ['critical', 'warning', 'info'];

const logFlags: Record<string, string> = {
  '--status': 'status',
  '--domain': 'domain',
  '--reason': 'reason',
  '--category': 'category',
  '--mx-host': 'mxHost',
};

/** The dashboard page holding a finding's evidence: its logs, its delivery, workflow, MX or database page. */
export function evidenceHref(finding: Pick<Finding, 'check' | 'subject' | 'logs'>): string | null {
  const delivery = /^delivery (\d+)$/.exec(finding.subject);
  if (finding.logs) {
    const words = finding.logs.split(/\s+/);
    const id = words[3];
    if (words[0] === 'herald' && words[1] === 'delivery' && words[2] === 'logs' && id && /^\d+$/.test(id)) {
      const query = new URLSearchParams();
      for (let i = 4; i + 1 < words.length; i += 2) {
        const key = logFlags[words[i]!];
        if (key) query.set(key, words[i + 1]!);
      }
      return `/ui/deliveries/${id}/logs${query.size > 0 ? `?${query.toString()}` : ''}`;
    }
  }
  if (delivery) return `/ui/deliveries/${delivery[1]}`;
  const workflow = /^workflow (\S+)$/.exec(finding.subject);
  if (workflow) return `/ui/workflows/${encodeURIComponent(workflow[1]!)}`;
  if (/^(mx rule|domain) /.test(finding.subject)) return '/ui/mx';
  if (/^(table|index|database) /.test(finding.subject)) return '/ui/database';
  if (finding.check === 'midsourcing') return '/ui/mid';
  return null;
}

function iso(at: number | null | undefined): string | null {
  return at === null || at === undefined ? null : new Date(at).toISOString();
}

export function registerPlatformPages(routes: WebRoutes, options: { ticks: LiveTicks }): void {
  routes.get('/doctor', 'viewer', async (context) => {
    // One run shared by every viewer (and the API's GET /doctor), at most every 15 s (live-ticks.ts).
    const diagnosis = await options.ticks.doctor.get('all');
    return context.render('doctor', {
      title: 'Doctor',
      nav: 'doctor',
      checkedAt: diagnosis.checkedAt,
      notChecked: diagnosis.deliveriesNotChecked,
      groups: severities.map((severity) => ({
        severity,
        findings: diagnosis.findings
          .filter((f) => f.severity === severity)
          .map((f) => ({ ...f, href: evidenceHref(f), evidenceText: JSON.stringify(f.evidence) })),
      })),
    });
  });

  routes.get('/mx', 'viewer', async (context) => {
    const { herald } = context;
    const [stats, versions] = await Promise.all([readMxStats(herald, 300), listVersions(herald.store, { limit: 20 })]);
    const views = versions.map(ruleVersionView);
    const lastUpdate = views.find((v) => v.replacesId !== null) ?? null;
    return context.render('mx', {
      title: 'MX rules and paths',
      nav: 'mx',
      takenAt: iso(stats.takenAt),
      nodes: stats.nodes.map((n) => ({ ...n, takenAt: iso(n.takenAt) })),
      rules: stats.rules.map((r) => ({
        ...r,
        loadPercent: Math.round(r.load.messagesPerHour * 100),
      })),
      paths: stats.paths.map((p) => ({
        ...p,
        connectionsPercent: Math.round(p.load.connections * 100),
        ratePercent: Math.round(p.load.messagesPerHour * 100),
      })),
      rulesOmitted: omittedNote(stats.omitted?.rules ?? 0, 'rate keys'),
      pathsOmitted: omittedNote(stats.omitted?.paths ?? 0, 'paths'),
      backoffs: stats.backoffs.map((b) => ({
        ...b,
        since: iso(b.since),
        until: iso(b.until),
        replies: b.evidence.replies.slice(0, 3),
      })),
      suspensions: stats.suspensions.map((s) => ({
        ...s,
        since: iso(s.since),
        until: iso(s.until),
        errorPercent: Math.round(s.evidence.errorRatio * 1000) / 10,
        replies: s.evidence.sampleReplies.slice(0, 3),
      })),
      versions: views.map((v) => ({ ...v, diffText: formatDiff(v.diff) })),
      lastUpdate: lastUpdate && { ...lastUpdate, diffText: formatDiff(lastUpdate.diff) },
    });
  });

  routes.get('/database', 'viewer', async (context) => {
    // dbstat and a count per table on SQLite: one read shared by every viewer (live-ticks.ts).
    const status = await options.ticks.database.get('all');
    return context.render('database', {
      title: 'Database',
      nav: 'database',
      status,
      canMaintain: context.may('admin'),
      lastMaintenanceSummary: status.lastMaintenance ? JSON.stringify(status.lastMaintenance.summary) : null,
    });
  });

  routes.get('/database/confirm/maintain', 'admin', async (context) =>
    context.render('confirm', {
      title: 'Run database maintenance?',
      nav: 'database',
      question:
        'Run the maintenance of the cleanup workflow now (VACUUM/ANALYZE of the hot tables, incremental vacuum on SQLite)? It can take a while on a large database.',
      action: '/ui/database/maintain',
      label: 'Run maintenance',
      cancel: '/ui/database',
    }),
  );

  routes.post('/database/maintain', { permission: 'admin', audit: 'maintainDatabase' }, async (context) => {
    const { herald } = context;
    await runMaintenance(
      herald.store,
      herald.config,
      herald.clock,
      { log: async () => {}, keepAlive: async () => {} },
      { source: 'dashboard', convertSqlite: false },
    );
    options.ticks.database.invalidate('all');
    return context.reply.redirect('/ui/database', 303);
  });

  routes.get('/mid', 'viewer', async (context) => {
    const deliveries = await outboundStatuses(context.herald.store);
    return context.render('mid', {
      title: 'Mid-sourcing',
      nav: 'mid',
      timeoutMs: context.herald.config.midsourcing.requestTimeoutMs,
      deliveries: deliveries.map((d) => ({
        ...d,
        lastErrorAt: iso(d.lastErrorAt),
        syncedAt: iso(d.logs.syncedAt),
        unacknowledged: d.stateChange !== null && !d.stateChange.reached,
      })),
    });
  });
}
