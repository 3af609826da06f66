// The console page: Preact components written with htm (no build step); data from the JSON API.
import htm from 'htm';
import { h, render } from 'preact';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { keyedLines } from './chart-series.mjs';
import { TimeChart } from './charts.mjs';

const html = htm.bind(h);
const CSRF = document.querySelector('meta[name="csrf-token"]').content;
/** Points kept per chart: two minutes at one poll a second. */
const HISTORY = 120;

async function api(path, body) {
  const init = body === undefined ? {} : { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': CSRF }, body: JSON.stringify(body) };
  const response = await fetch(path, { credentials: 'same-origin', ...init });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error ?? `${response.status} ${response.statusText}`);
  return data;
}

/** Calls `fn` now and every `ms` while mounted; a slow call is not overlapped by the next. */
function usePolling(fn, ms) {
  const saved = useRef(fn);
  saved.current = fn;
  useEffect(() => {
    let stopped = false;
    let timer;
    const tick = async () => {
      await saved.current();
      if (!stopped) timer = setTimeout(tick, ms);
    };
    tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [ms]);
}

const fmt = (n) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US', { maximumFractionDigits: 2 }));
const age = (s) => (s < 1 ? '0s' : s < 120 ? `${Math.round(s)}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`);
const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

function Tile({ label, value, testId }) {
  return html`<div class="tile"><div class="label">${label}</div><div class="value" data-testid=${testId}>${value}</div></div>`;
}

function PipelineView() {
  const [snapshot, setSnapshot] = useState(null);
  const [error, setError] = useState(null);
  const [history, setHistory] = useState({ t: [], written: [], published: [], consumed: [], pending: [], oldest: [], shards: [], groups: [], partitions: [] });
  /** Groups whose panel the user opened or closed against the default. */
  const [toggledGroups, setToggledGroups] = useState(new Set());
  usePolling(async () => {
    try {
      const s = await api('/api/pipeline');
      setSnapshot(s);
      setError(null);
      setHistory((prev) => {
        const push = (list, v) => [...list, v].slice(-HISTORY);
        const t = Date.parse(s.at) / 1000;
        return {
          t: push(prev.t, t),
          written: push(prev.written, s.writtenPerSecond),
          published: push(prev.published, s.publishedPerSecond),
          consumed: push(prev.consumed, s.consumedPerSecond),
          pending: push(prev.pending, s.backlog.pending),
          oldest: push(prev.oldest, s.backlog.oldestAgeSeconds),
          // Keyed samples for the per-shard and per-group charts (see chart-series.mjs).
          shards: push(prev.shards, { t, values: Object.fromEntries(s.shards.map((sh) => [sh.shard, sh.pending])) }),
          groups: push(prev.groups, { t, values: s.lagError ? null : Object.fromEntries(s.groups.map((g) => [g.groupId, g.totalLag])) }),
          // Per group, its partitions' lag by "topic [partition]"; null without a reading.
          partitions: push(prev.partitions, {
            t,
            byGroup: s.lagError
              ? null
              : Object.fromEntries(s.groups.map((g) => [g.groupId, Object.fromEntries(g.partitions.map((p) => [`${p.topic} [${p.partition}]`, p.lag]))])),
          }),
        };
      });
    } catch (e) {
      setError(e.message);
    }
  }, 1000);
  const shardLines = useMemo(
    () => keyedLines(history.shards, { label: (shard) => `shard ${shard}`, other: 'other shards', empty: 'no backlog' }),
    [history.shards],
  );
  const groupLines = useMemo(() => keyedLines(history.groups, { other: 'other groups', empty: 'no lag' }), [history.groups]);
  if (!snapshot) return html`${error ? html`<div class="error">${error}</div>` : html`<p class="muted">Reading the pipeline…</p>`}`;
  const s = snapshot;
  const holders = new Map();
  for (const shard of s.shards) if (shard.heldBy) holders.set(shard.heldBy, [...(holders.get(shard.heldBy) ?? []), shard.shard]);
  const backlogged = s.shards.filter((shard) => shard.pending > 0);
  return html`
    ${error && html`<div class="error">${error}</div>`}
    <div class="tiles">
      <${Tile} label="written / s" value=${fmt(s.writtenPerSecond)} testId="written-rate" />
      <${Tile} label="published / s" value=${fmt(s.publishedPerSecond)} testId="published-rate" />
      <${Tile} label="consumed / s" value=${fmt(s.consumedPerSecond)} testId="consumed-rate" />
      <${Tile} label="outbox pending" value=${fmt(s.backlog.pending)} testId="outbox-pending" />
      <${Tile} label="oldest pending" value=${age(s.backlog.oldestAgeSeconds)} testId="oldest-pending" />
      <${Tile} label="dead letters pending" value=${fmt(s.deadLettersPending)} testId="dead-letters-pending" />
    </div>
    <p class="muted">Updated <span data-testid="updated-at">${new Date(s.at).toLocaleTimeString()}</span>; rates over the last 5 s (written and published: the EventLog; consumed: committed offsets in Kafka).</p>
    <div class="charts">
      <${TimeChart} title="Events per second" testId="chart-throughput"
        series=${[{ label: 'written', color: '#2457c5' }, { label: 'published', color: '#177245' }, { label: 'consumed', color: '#c26a00' }]}
        data=${[history.t, history.written, history.published, history.consumed]} />
      <${TimeChart} title="Outbox backlog" testId="chart-backlog"
        series=${[{ label: 'pending rows', color: '#6941c6' }, { label: 'oldest pending (s)', color: '#b42318', scale: 'right' }]}
        data=${[history.t, history.pending, history.oldest]} />
      <${TimeChart} title="Outbox backlog per shard (pending rows)" testId="chart-shard-backlog" series=${shardLines.series} data=${shardLines.data} />
      <${TimeChart} title="Consumer lag per group" testId="chart-group-lag" series=${groupLines.series} data=${groupLines.data} />
    </div>
    <section class="panel">
      <h2>Backlog per shard</h2>
      ${
        backlogged.length === 0
          ? html`<p class="muted" data-testid="shards-empty">No shard has a backlog.</p>`
          : html`<table data-testid="shards"><thead><tr><th>shard</th><th>pending</th><th>failing</th><th>oldest pending</th><th>held by</th></tr></thead>
          <tbody>${backlogged.map((sh) => html`<tr><td>${sh.shard}</td><td>${fmt(sh.pending)}</td><td>${fmt(sh.failing)}</td><td>${age(sh.oldestAgeSeconds)}</td><td>${sh.heldBy ?? html`<span class="error">nobody</span>`}</td></tr>`)}</tbody></table>`
      }
    </section>
    <section class="panel">
      <h2>Relay instances</h2>
      ${
        s.relayInstances.length === 0
          ? html`<p class="muted">No relay has sent a heartbeat in the last minute.</p>`
          : html`<table data-testid="relay-instances"><thead><tr><th>instance</th><th>host</th><th>pid</th><th>heartbeat</th><th>shards held</th></tr></thead>
          <tbody>${s.relayInstances.map((i) => {
            const held = holders.get(i.instanceId) ?? i.shards;
            return html`<tr><td>${i.instanceId}</td><td>${i.host}</td><td>${i.pid}</td><td>${age(i.heartbeatAgeSeconds)} ago</td><td>${held.length} (${held.join(', ')})</td></tr>`;
          })}</tbody></table>`
      }
    </section>
    <section class="panel">
      <h2>Consumer group lag (from Kafka)</h2>
      ${s.lagError && html`<div class="error">${s.lagError}</div>`}
      ${s.groups.length === 0 && !s.lagError ? html`<p class="muted">No consumer group has committed offsets.</p>` : null}
      ${s.groups.map((g) => {
        // Open by default when few groups are shown (a closed panel draws no chart); a toggled one the other way.
        const openByDefault = s.groups.length <= 6;
        const open = openByDefault !== toggledGroups.has(g.groupId);
        const toggle = (e) =>
          e.currentTarget.open !== open &&
          setToggledGroups((prev) => {
            const next = new Set(prev);
            next.has(g.groupId) ? next.delete(g.groupId) : next.add(g.groupId);
            return next;
          });
        return html`<details open=${open} onToggle=${toggle} data-testid="group-lag" data-group=${g.groupId}>
          <summary><strong>${g.groupId}</strong>: lag <span data-testid="group-total-lag">${fmt(g.totalLag)}</span> over ${plural(g.partitions.length, 'partition')}</summary>
          ${open && html`<${PartitionLagChart} groupId=${g.groupId} samples=${history.partitions} />`}
          <table><thead><tr><th>topic</th><th>partition</th><th>committed</th><th>end</th><th>lag</th></tr></thead>
          <tbody>${g.partitions.map((p) => html`<tr><td>${p.topic}</td><td>${p.partition}</td><td>${p.committed}</td><td>${p.end}</td><td>${fmt(p.lag)}</td></tr>`)}</tbody></table>
        </details>`;
      })}
    </section>`;
}

/** One group's lag per topic partition over time: a line per partition (the busiest ones, see keyedLines). */
function PartitionLagChart({ groupId, samples }) {
  const lines = useMemo(
    () =>
      keyedLines(
        samples.map((s) => ({ t: s.t, values: s.byGroup?.[groupId] ?? null })),
        { other: 'other partitions', empty: 'no lag' },
      ),
    [groupId, samples],
  );
  return html`<${TimeChart} title=${`${groupId}: lag per partition`} testId="chart-partition-lag" series=${lines.series} data=${lines.data} compact=${true} />`;
}

/** A modal question with a count in it; resolves through `onAnswer(true|false)`. */
function ConfirmDialog({ question, onAnswer }) {
  const ref = useRef(null);
  useEffect(() => {
    if (question) ref.current.showModal();
    else if (ref.current.open) ref.current.close();
  }, [question]);
  return html`<dialog ref=${ref} data-testid="confirm" onCancel=${() => onAnswer(false)}>
    <p>${question}</p>
    <div class="actions">
      <button class="primary" data-testid="confirm-yes" onClick=${() => onAnswer(true)}>Yes</button>
      <button data-testid="confirm-no" onClick=${() => onAnswer(false)}>Cancel</button>
    </div>
  </dialog>`;
}

function useConfirm() {
  const [pending, setPending] = useState(null);
  const ask = useCallback((question) => new Promise((resolve) => setPending({ question, resolve })), []);
  const dialog = html`<${ConfirmDialog}
    question=${pending?.question}
    onAnswer=${(yes) => {
      pending?.resolve(yes);
      setPending(null);
    }} />`;
  return [ask, dialog];
}

function formQuery(form) {
  const params = new URLSearchParams();
  for (const [k, v] of new FormData(form)) if (String(v).trim() !== '') params.set(k, k === 'since' || k === 'until' ? new Date(v).toISOString() : v);
  return params.toString();
}

function DeadLettersView() {
  const [rows, setRows] = useState(null);
  const [selected, setSelected] = useState(new Set());
  const [open, setOpen] = useState(null);
  const [message, setMessage] = useState(null);
  const [error, setError] = useState(null);
  const [ask, dialog] = useConfirm();
  const form = useRef(null);
  const load = useCallback(async () => {
    try {
      setRows(await api(`/api/dead-letters?${formQuery(form.current)}`));
      setError(null);
    } catch (e) {
      setError(e.message);
    }
  }, []);
  useEffect(() => void load(), [load]);
  const act = async (action, ids) => {
    const verb = action === 'retry' ? 'Retry' : 'Discard';
    if (!(await ask(`${verb} ${plural(ids.length, 'dead letter')}?`))) return;
    try {
      const { results } = await api(`/api/dead-letters/${action}`, { ids });
      const failed = results.filter((r) => r.outcome === 'failed' || r.outcome === 'not_found');
      setMessage(
        `${verb === 'Retry' ? 'Re-driven' : 'Discarded'}: ${results.length - failed.length} of ${ids.length}.${failed.map((f) => ` ${f.message}`).join('')}`,
      );
      setSelected(new Set());
      setOpen(null);
      await load();
    } catch (e) {
      setError(e.message);
    }
  };
  const toggle = (id) =>
    setSelected((prev) => {
      const next = new Set(prev);
      next.has(id) ? next.delete(id) : next.add(id);
      return next;
    });
  const ids = [...selected];
  return html`
    ${open && html`<${DeadLetterDetail} id=${open} onAction=${act} onClose=${() => setOpen(null)} />`}
    <section class="panel">
      <form class="filters" ref=${form} onSubmit=${(e) => {
        e.preventDefault();
        load();
      }}>
        <label>group <input name="group" data-testid="filter-group" /></label>
        <label>tenant <input name="tenant" data-testid="filter-tenant" /></label>
        <label>stage <select name="stage" data-testid="filter-stage"><option value="">any</option><option>consumer</option><option>relay</option></select></label>
        <label>event type <input name="type" placeholder="order.*" data-testid="filter-type" /></label>
        <label>since <input name="since" type="datetime-local" data-testid="filter-since" /></label>
        <label>until <input name="until" type="datetime-local" data-testid="filter-until" /></label>
        <label>status <select name="status" data-testid="filter-status"><option>pending</option><option>redriven</option><option>discarded</option><option value="all">all</option></select></label>
        <button class="primary" type="submit" data-testid="filter-apply">Filter</button>
      </form>
      ${message && html`<div class="message" data-testid="action-message">${message}</div>`}
      ${error && html`<div class="error">${error}</div>`}
      <div class="actions">
        <button class="primary" disabled=${ids.length === 0} data-testid="retry-selected" onClick=${() => act('retry', ids)}>Retry selected (${ids.length})</button>
        <button class="danger" disabled=${ids.length === 0} data-testid="discard-selected" onClick=${() => act('discard', ids)}>Discard selected (${ids.length})</button>
        <span class="muted" data-testid="dead-letter-count">${rows ? plural(rows.length, 'dead letter') : ''}</span>
      </div>
      ${
        rows &&
        html`<table data-testid="dead-letters"><thead><tr><th></th><th>id</th><th>stage</th><th>group</th><th>tenant</th><th>type</th><th>attempts</th><th>status</th><th>last failed</th><th>error</th></tr></thead>
        <tbody>${rows.map(
          (r) => html`<tr class="clickable" data-testid="dead-letter-row" data-id=${r.id} onClick=${() => setOpen(r.id)}>
            <td onClick=${(e) => e.stopPropagation()}><input type="checkbox" data-testid="select" checked=${selected.has(r.id)} onChange=${() => toggle(r.id)} /></td>
            <td>${r.id}</td><td>${r.stage}</td><td>${r.groupId ?? '–'}</td><td>${r.tenantId ?? '–'}</td><td>${r.eventType ?? '–'}</td>
            <td>${r.attempts}</td><td>${r.status}</td><td>${new Date(r.lastFailedAt).toLocaleString()}</td><td>${r.refusedCopyBytes === null ? '' : html`<strong>[value not stored] </strong>`}${r.errorClass}: ${r.errorMessage}</td>
          </tr>`,
        )}</tbody></table>`
      }
    </section>
    ${dialog}`;
}

function DeadLetterDetail({ id, onAction, onClose }) {
  const [row, setRow] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    setRow(null);
    api(`/api/dead-letters/${id}`).then(setRow, (e) => setError(e.message));
  }, [id]);
  if (error) return html`<div class="error">${error}</div>`;
  if (!row) return html`<p class="muted">Loading dead letter ${id}…</p>`;
  const position = row.mirrorPositions.map((p) => `partition ${p.partition}: next offset ${p.nextOffset}`).join('; ');
  // What a DLQ record sent without its key and oversize headers left out (DLQ header eventbus-dlq-dropped).
  const dropped = row.dropped ?? [];
  const tenantLeftOut = dropped.find((d) => d.name === 'ce_tenantid');
  return html`<section class="panel" data-testid="dead-letter-detail">
    <h2>Dead letter ${row.id} <button onClick=${onClose}>Close</button></h2>
    <dl class="facts">
      <dt>status</dt><dd>${row.status}</dd>
      <dt>stage / group</dt><dd>${row.stage} / ${row.groupId ?? '–'}</dd>
      <dt>event</dt><dd>${row.eventType ?? '–'} ${row.eventId ?? ''} (tenant ${row.tenantId ?? (tenantLeftOut ? `not stored, ${fmt(tenantLeftOut.bytes)} bytes` : '–')})</dd>
      <dt>original position</dt><dd data-testid="original-position">${row.topic ? `${row.topic} partition ${row.partition} offset ${row.offset}` : '– (relay stage: never reached Kafka)'}</dd>
      <dt>attempts</dt><dd>${row.attempts}, first failed ${new Date(row.firstFailedAt).toLocaleString()}, last ${new Date(row.lastFailedAt).toLocaleString()}</dd>
      <dt>error</dt><dd>${row.errorClass}: ${row.errorMessage}</dd>
      <dt>mirror position</dt><dd>${row.dlqTopic ? `${row.dlqTopic}: ${position || 'nothing mirrored yet'}` : '– (relay stage)'}</dd>
    </dl>
    ${
      row.status === 'pending' &&
      html`<div class="actions">
      <button class="primary" data-testid="retry-one" onClick=${() => onAction('retry', [row.id])}>Retry</button>
      <button class="danger" data-testid="discard-one" onClick=${() => onAction('discard', [row.id])}>Discard</button></div>`
    }
    <h3>Payload</h3>${
      row.refusedCopyBytes === null
        ? html`<pre data-testid="payload">${JSON.stringify(row.payload, null, 2)}</pre>`
        : html`<p class="error" data-testid="payload-not-stored">Not stored: the DLQ copy (${fmt(row.refusedCopyBytes)} bytes) was larger than the DLQ topic accepts. The event is at its original position above, and in the EventLog; replay it to the group once the retry topic's max.message.bytes is raised.</p>`
    }${
      dropped.length > 0 &&
      html`<p class="error" data-testid="left-out">Also left out of the DLQ record, too large for the DLQ topic: ${dropped.map((d) => `${d.name} (${fmt(d.bytes)} bytes)`).join(', ')}. The original holds them.</p>`
    }
    <h3>Headers</h3><pre>${JSON.stringify(row.headers, null, 2)}</pre>
    <h3>Stack</h3><pre>${row.errorStack ?? '–'}</pre>
  </section>`;
}

function replayBody(form) {
  const data = Object.fromEntries(new FormData(form));
  for (const k of ['from', 'to']) data[k] = data[k] ? new Date(data[k]).toISOString() : '';
  return data;
}

function ReplayView() {
  const form = useRef(null);
  const [count, setCount] = useState(null);
  const [jobs, setJobs] = useState([]);
  const [error, setError] = useState(null);
  const [ask, dialog] = useConfirm();
  usePolling(async () => setJobs(await api('/api/replays').catch(() => jobs)), 1000);
  const dryRun = async () => {
    try {
      setError(null);
      const { total } = await api('/api/replays/dry-run', replayBody(form.current));
      setCount(total);
      return total;
    } catch (e) {
      setError(e.message);
      return undefined;
    }
  };
  const start = async (e) => {
    e.preventDefault();
    const body = replayBody(form.current);
    const total = await dryRun();
    if (total === undefined) return;
    const where = body.group ? `group ${body.group}'s retry topic` : 'the event topics (every consumer group sees them again)';
    if (!(await ask(`Replay ${plural(total, 'event')} of tenant ${body.tenant} to ${where} at ${body.rate}/s?`))) return;
    try {
      await api('/api/replays', body);
      setJobs(await api('/api/replays'));
    } catch (e2) {
      setError(e2.message);
    }
  };
  return html`
    <section class="panel">
      <h2>Replay events from the EventLog</h2>
      <form class="replay" ref=${form} onSubmit=${start}>
        <label>tenant <input name="tenant" required data-testid="replay-tenant" /></label>
        <label>event types <input name="types" placeholder="order.*, product.updated" data-testid="replay-types" /></label>
        <label>from <input name="from" type="datetime-local" data-testid="replay-from" /></label>
        <label>to <input name="to" type="datetime-local" data-testid="replay-to" /></label>
        <label>to group (empty: the event topics) <input name="group" data-testid="replay-group" /></label>
        <label>rate (events/s) <input name="rate" type="number" min="0.1" step="any" defaultValue="100" required data-testid="replay-rate" /></label>
        <button type="button" data-testid="replay-dry-run" onClick=${dryRun}>Count (dry run)</button>
        <button class="primary" type="submit" data-testid="replay-start">Start replay</button>
      </form>
      ${count !== null && html`<p data-testid="replay-count">${plural(count, 'event')} match.</p>`}
      ${error && html`<div class="error">${error}</div>`}
    </section>
    <section class="panel">
      <h2>Replays started here</h2>
      ${
        jobs.length === 0
          ? html`<p class="muted">None yet.</p>`
          : html`<table data-testid="replay-jobs"><thead><tr><th>#</th><th>tenant</th><th>types</th><th>target</th><th>rate</th><th>progress</th><th>state</th><th></th></tr></thead>
        <tbody>${jobs.map(
          (j) => html`<tr data-testid="replay-job" data-state=${j.state}>
            <td>${j.id}</td><td>${j.tenantId}</td><td>${j.eventTypes.join(', ') || 'all'}</td>
            <td>${j.target.kind === 'group' ? `group ${j.target.groupId}` : 'event topics'}</td><td>${j.ratePerSecond}/s</td>
            <td><progress max=${j.total ?? 1} value=${j.sent}></progress> <span data-testid="replay-progress">${j.sent} / ${j.total ?? '?'}</span></td>
            <td>${j.state}${j.error ? html`<div class="error">${j.error}</div>` : ''}${j.resumeToken ? html`<div class="muted">resume: eventbus replay … --resume ${j.resumeToken}</div>` : ''}</td>
            <td>${j.state === 'running' && html`<button onClick=${() => api(`/api/replays/${j.id}/stop`, {})}>Stop</button>`}</td>
          </tr>`,
        )}</tbody></table>`
      }
    </section>
    ${dialog}`;
}

const TABS = { pipeline: ['Pipeline', PipelineView], 'dead-letters': ['Dead letters', DeadLettersView], replay: ['Replay', ReplayView] };

function App() {
  const [tab, setTab] = useState(location.hash.slice(1) in TABS ? location.hash.slice(1) : 'pipeline');
  const [info, setInfo] = useState(null);
  useEffect(() => void api('/api/info').then(setInfo, () => undefined), []);
  useEffect(() => {
    const onHash = () => location.hash.slice(1) in TABS && setTab(location.hash.slice(1));
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  const View = TABS[tab][1];
  return html`
    <header class="top"><h1>eventbus console</h1>
      ${info && html`<span class="conn">Postgres ${info.database ?? '?'} · Kafka ${info.brokers?.join(',') ?? 'not configured'} · topics ${info.topicPrefix}*</span>`}
    </header>
    <nav class="tabs">${Object.entries(TABS).map(
      ([key, [label]]) =>
        html`<button class=${key === tab ? 'active' : ''} data-testid=${`tab-${key}`} onClick=${() => (location.hash = key)}>${label}</button>`,
    )}</nav>
    <main><${View} /></main>`;
}

const root = document.getElementById('app');
root.textContent = ''; // the static "Loading" line
render(html`<${App} />`, root);
