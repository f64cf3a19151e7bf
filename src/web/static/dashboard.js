// Herald dashboard: the only script of the pages besides htmx and uPlot (the CSP allows no inline
// script). It adds the session's CSRF token to htmx requests, sizes the progress bars, draws the
// throughput chart from the series each live update carries, and says when a live region is stale.
(() => {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? '';

  document.addEventListener('htmx:config:request', (event) => {
    const headers = event.detail?.ctx?.request?.headers;
    if (headers && csrf) headers['X-CSRF-Token'] = csrf;
  });

  function sizeBars(root) {
    for (const element of root.querySelectorAll('[data-width]')) {
      const width = Number(element.getAttribute('data-width'));
      element.style.width = `${Number.isFinite(width) ? Math.max(0, Math.min(100, width)) : 0}%`;
    }
  }

  let chart = null;
  let lastSeries = '';

  function readSeries() {
    const holder = document.getElementById('throughput-data');
    return holder ? (holder.getAttribute('data-series') ?? '') : '';
  }

  function chartWidth(container) {
    return Math.max(300, Math.floor(container.getBoundingClientRect().width));
  }

  function drawChart() {
    const container = document.getElementById('throughput-chart');
    const text = readSeries();
    if (!container || !text || text === lastSeries || typeof window.uPlot !== 'function') return;
    lastSeries = text;
    const data = JSON.parse(text);
    container.setAttribute('data-points', String(data[0].length));
    container.setAttribute('data-sent', String(data[1].reduce((sum, n) => sum + n, 0)));
    if (chart) {
      chart.setData(data);
      return;
    }
    chart = new window.uPlot(
      {
        width: chartWidth(container),
        height: 240,
        scales: {
          x: { time: true },
          y: { range: (_u, _min, max) => [0, Math.max(5, Math.ceil(max * 1.1))] },
        },
        axes: [{}, { label: 'messages per minute' }],
        series: [
          {},
          { label: 'sent', stroke: '#1a7f37', width: 2, points: { show: true } },
          { label: 'deferred', stroke: '#9a6700', width: 2, points: { show: true } },
          { label: 'failed', stroke: '#cf222e', width: 2, points: { show: true } },
        ],
      },
      data,
      container,
    );
    window.addEventListener('resize', () => chart.setSize({ width: chartWidth(container), height: 240 }));
  }

  // A live region whose update fails (the server answers 5xx, or does not answer) keeps its last
  // figures (hx-status:5xx="swap:none") and goes on polling; a notice at its top says since when
  // they are not updated and why, until the next update replaces the region.
  const updatedAt = new Map();
  const isoSecond = (date) => `${date.toISOString().slice(0, 19)}Z`;
  const pageLoadedAt = new Date();

  document.addEventListener('htmx:after:swap', (event) => {
    const id = event.detail?.ctx?.sourceElement?.id;
    if (id) updatedAt.set(id, new Date());
  });

  function showStale(region, reason) {
    if (!region?.id) return;
    let notice = region.querySelector(':scope > .stale-notice');
    if (!notice) {
      notice = document.createElement('p');
      notice.className = 'notice error stale-notice';
      notice.setAttribute('role', 'alert');
      region.prepend(notice);
    }
    const since = isoSecond(updatedAt.get(region.id) ?? pageLoadedAt);
    notice.textContent = `Not updated since ${since}: ${reason}. Trying again…`;
  }

  function serverMessage(text) {
    const said = new DOMParser().parseFromString(text ?? '', 'text/html').body.textContent ?? '';
    return said.trim().replace(/\s+/g, ' ').slice(0, 300);
  }

  document.addEventListener('htmx:response:error', (event) => {
    const ctx = event.detail?.ctx;
    const status = ctx?.response?.status ?? 0;
    if (status < 500) return;
    const said = serverMessage(ctx.text);
    showStale(ctx.sourceElement, `the server answered ${status}${said ? ` (${said})` : ''}`);
  });

  document.addEventListener('htmx:error', (event) => {
    showStale(event.detail?.ctx?.sourceElement, 'the server does not answer');
  });

  function refresh() {
    sizeBars(document);
    drawChart();
  }

  new MutationObserver(refresh).observe(document.body, { childList: true, subtree: true });
  refresh();
})();
