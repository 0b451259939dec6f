// The flowctl ui page: the service map (cytoscape, fcose layout with one compound node per
// namespace), the same map as tables, and live flows from /api/flows. Plain ES module, no build.
/* global cytoscape, cytoscapeFcose */
cytoscape.use(cytoscapeFcose);

const $ = (sel) => document.querySelector(sel);
const MAX_ROWS = 1000;
const COLORS = { ok: '#8a949e', errors: '#e8871e', drops: '#d1242f' };

const state = {
  map: null,
  hidden: new Set(JSON.parse(localStorage.getItem('flowctl.hidden') || '[]')),
  /** What the flow table is narrowed to: null, {node} or {from, to}. */
  scope: null,
  rows: [],
  stream: null,
};
/** For scripts and tests: the graph, the state and the last render's figures. */
const ui = (window.flowctlUi = { cy: null, state, lastRender: null, renderLog: [], renders: 0, flowsDone: false });

function setStatus(msg) {
  $('#status').textContent = msg;
}

function td(text) {
  const c = document.createElement('td');
  c.textContent = text;
  return c;
}

function button(text, onClick, label) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  if (label) b.setAttribute('aria-label', label);
  b.addEventListener('click', onClick);
  return b;
}

// ---- map -----------------------------------------------------------------------------------

async function loadMap() {
  const since = $('#since').value;
  let r;
  try {
    r = await fetch(`/api/map?since=${encodeURIComponent(since)}`);
  } catch (e) {
    return setStatus(`map: ${e.message}`);
  }
  if (!r.ok) return setStatus(`map: ${(await r.text()).trim()}`);
  state.map = await r.json();
  setStatus(mapWarnings(state.map));
  render();
}

/** What the map lacks, as `flowctl map` warns: unanswered nodes, full buckets, a shorter window. */
function mapWarnings(m) {
  const w = [];
  if (m.unavailable_nodes?.length) w.push(`no answer from ${m.unavailable_nodes.join(', ')}: the map lacks what they saw`);
  if (m.overflow) w.push(`${m.overflow} flows not aggregated (buckets full)`);
  if (m.covered_since) w.push(`the map covers only since ${m.covered_since}`);
  return w.join('; ');
}

/** Edges of the map drawn once per (source, destination): ports and protocols summed. */
function drawnEdges(edges, shown) {
  const pairs = new Map();
  for (const e of edges) {
    if (!shown.has(e.source) || !shown.has(e.destination)) continue;
    const key = `${e.source}\u0000${e.destination}`;
    let p = pairs.get(key);
    if (!p) pairs.set(key, (p = { source: e.source, destination: e.destination, flows: 0, bytes: 0, drops: 0, errors: 0, ports: [] }));
    p.flows += e.flows || 0;
    p.bytes += (e.bytes_sent || 0) + (e.bytes_received || 0);
    p.drops += e.drops || 0;
    p.errors += (e.http_errors || 0) + (e.dns_errors || 0);
    p.ports.push(`${e.port}/${e.protocol}`);
  }
  const straight = pairs.size > BEZIER_MAX_EDGES;
  return [...pairs.values()].map((p) => {
    const weight = p.bytes || p.flows;
    const kind = p.drops ? 'drops' : p.errors ? 'errors' : 'ok';
    return {
      group: 'edges',
      data: {
        id: `e\u0000${p.source}\u0000${p.destination}`, source: p.source, target: p.destination, from: p.source, to: p.destination,
        width: 1 + Math.min(9, 2 * Math.log10(1 + weight)), color: COLORS[kind], kind,
        flows: p.flows, bytes: p.bytes, drops: p.drops, errors: p.errors, ports: p.ports.join(', '),
      },
      classes: straight ? 'straight' : '',
    };
  });
}

function graphElements() {
  const nodes = state.map.nodes.filter((n) => !state.hidden.has(n.id));
  const shown = new Set(nodes.map((n) => n.id));
  const namespaces = new Set(nodes.filter((n) => n.namespace).map((n) => n.namespace));
  const els = [];
  for (const ns of [...namespaces].sort()) els.push({ group: 'nodes', data: { id: `ns\u0000${ns}`, label: ns, namespace: ns }, classes: 'namespace' });
  for (const n of nodes) {
    els.push({
      group: 'nodes',
      data: { id: n.id, label: n.workload || n.id, parent: n.namespace ? `ns\u0000${n.namespace}` : undefined, pods: n.pods },
      classes: `${n.namespace ? 'workload' : 'external'}${nodes.length > FORCE_LAYOUT_MAX_NODES ? ' unlabelled' : ''}`,
    });
  }
  return { nodes: els, edges: drawnEdges(state.map.edges, shown) };
}

const STYLE = [
  { selector: 'node', style: { label: 'data(label)', 'font-size': 10, 'min-zoomed-font-size': 7, width: 18, height: 18, 'background-color': '#3b82c4', 'text-valign': 'bottom', 'text-margin-y': 3 } },
  { selector: 'node.external', style: { shape: 'diamond', 'background-color': '#8250df' } },
  { selector: 'node.namespace', style: { 'background-color': '#3b82c4', 'background-opacity': 0.06, 'border-width': 1, 'border-color': '#9fb6cc', 'text-valign': 'top', 'text-margin-y': -2, 'font-size': 12, 'font-weight': 'bold', padding: 12, shape: 'round-rectangle' } },
  { selector: 'edge', style: { width: 'data(width)', 'line-color': 'data(color)', 'target-arrow-color': 'data(color)', 'target-arrow-shape': 'triangle', 'curve-style': 'bezier', 'arrow-scale': 0.8, opacity: 0.85 } },
  { selector: 'edge.straight', style: { 'curve-style': 'haystack', 'haystack-radius': 0, 'target-arrow-shape': 'none' } },
  { selector: 'node.unlabelled', style: { label: '' } },
  { selector: ':selected', style: { 'overlay-color': '#0969da', 'overlay-opacity': 0.25, 'overlay-padding': 4 } },
];

const LAYOUT = { name: 'fcose', animate: false, randomize: true, nodeDimensionsIncludeLabels: true, packComponents: true, fit: true, padding: 20 };
/** Above this many nodes the force-directed layout costs seconds (grid instead) and labels clutter. */
const FORCE_LAYOUT_MAX_NODES = 120;
/** Above this many drawn edges, haystack lines without arrows: bezier and arrows cost the first frame. */
const BEZIER_MAX_EDGES = 400;

/**
 * Positions for large maps, in O(nodes): each namespace a square grid of its workloads (by name),
 * namespaces shelf-packed biggest first into a roughly square area; non-namespaced nodes last.
 */
function gridPositions(nodes) {
  const STEP = 70;
  const GAP = 90;
  const groups = new Map();
  for (const n of nodes) {
    if (n.group !== 'nodes' || n.classes === 'namespace') continue;
    const key = n.data.parent || '';
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(n.data.id);
  }
  const boxes = [...groups.entries()].map(([key, ids]) => {
    ids.sort();
    const cols = Math.ceil(Math.sqrt(ids.length));
    return { key, ids, cols, w: cols * STEP, h: Math.ceil(ids.length / cols) * STEP };
  });
  boxes.sort((a, b) => (a.key === '') - (b.key === '') || b.ids.length - a.ids.length || a.key.localeCompare(b.key));
  const width = Math.sqrt(boxes.reduce((a, b) => a + (b.w + GAP) * (b.h + GAP), 0)) * 1.2;
  const positions = new Map();
  let x = 0;
  let y = 0;
  let rowH = 0;
  for (const b of boxes) {
    if (x > 0 && x + b.w > width) {
      x = 0;
      y += rowH + GAP;
      rowH = 0;
    }
    b.ids.forEach((id, i) => positions.set(id, { x: x + (i % b.cols) * STEP, y: y + Math.floor(i / b.cols) * STEP }));
    x += b.w + GAP;
    rowH = Math.max(rowH, b.h);
  }
  return positions;
}

function createGraph(edgeCount) {
  const cy = cytoscape({
    container: $('#map'), elements: [], style: STYLE, wheelSensitivity: 0.3, pixelRatio: 1,
    hideEdgesOnViewport: edgeCount > 1000, textureOnViewport: edgeCount > 1000,
  });
  cy.on('tap', 'node.workload, node.external', (ev) => setScope({ node: ev.target.id() }));
  cy.on('tap', 'node.namespace', (ev) => {
    $('#flow-filters').elements.namespace.value = ev.target.data('namespace');
    setScope(null);
  });
  cy.on('tap', 'edge', (ev) => setScope({ from: ev.target.data('from'), to: ev.target.data('to') }));
  cy.on('tap', (ev) => { if (ev.target === cy) setScope(null); });
  return cy;
}

/** Zoom and pan that show `positions` whole, computed from them rather than from measured bounds. */
function fitPositions(cy, positions) {
  const MARGIN = 60; // node, label and namespace box around the outermost centres
  let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
  for (const p of positions.values()) [x0, y0, x1, y1] = [Math.min(x0, p.x), Math.min(y0, p.y), Math.max(x1, p.x), Math.max(y1, p.y)];
  const w = x1 - x0 + 2 * MARGIN;
  const h = y1 - y0 + 2 * MARGIN;
  const zoom = Math.min(1.5, cy.width() / w, cy.height() / h);
  cy.viewport({ zoom, pan: { x: (cy.width() - w * zoom) / 2 - (x0 - MARGIN) * zoom, y: (cy.height() - h * zoom) / 2 - (y0 - MARGIN) * zoom } });
}

const EDGE_KEYS = ['flows', 'bytes', 'drops', 'errors', 'ports'];


/** Draws the map; `tables` false when only hidden nodes changed (their rows are updated in place). */
function render(tables = true) {
  const t0 = performance.now();
  const { nodes, edges } = graphElements();
  const cy = (ui.cy ??= createGraph(edges.length));
  const wanted = new Set(nodes.map((n) => n.data.id));
  const present = new Set(cy.nodes().map((n) => n.id()));
  // New nodes mean a new layout; hidden or vanished nodes just go and the rest stay in place.
  const layout = nodes.some((n) => !present.has(n.data.id));
  const force = nodes.length <= FORCE_LAYOUT_MAX_NODES;
  let grid;
  if (layout && !force) {
    // Positions given with the elements: a layout run afterwards would move (and re-measure) every node.
    grid = gridPositions(nodes);
    for (const n of nodes) if (grid.has(n.data.id)) n.position = grid.get(n.data.id);
  }
  cy.batch(() => {
    if (layout) cy.elements().remove();
    else cy.remove(cy.nodes().filter((n) => !wanted.has(n.id())));
    if (layout) cy.add(nodes);
    const fresh = new Map(edges.map((e) => [e.data.id, e]));
    cy.edges().forEach((e) => {
      const want = fresh.get(e.id());
      if (!want) return void e.remove();
      fresh.delete(e.id());
      if (EDGE_KEYS.some((k) => e.data(k) !== want.data[k])) e.data(want.data);
      if (e.hasClass('straight') !== (want.classes === 'straight')) e.classes(want.classes);
    });
    cy.add([...fresh.values()]);
  });
  const tAdded = performance.now();
  if (layout && nodes.length) {
    if (force) cy.layout(LAYOUT).run();
    else fitPositions(cy, grid);
  }
  const tLayout = performance.now();
  // Figures for the benchmark: the time from this call to the frame after the map is drawn.
  // The map first: the tables (thousands of rows for a large map) come after its frame.
  const done = () => {
    const now = performance.now();
    const last = {
      ms: now - t0, addMs: tAdded - t0, layoutMs: tLayout - tAdded, sinceNavigationMs: now, layout,
      nodes: state.map.nodes.length, edges: state.map.edges.length, drawnNodes: cy.nodes().length, drawnEdges: cy.edges().length,
    };
    if (tables) renderTables();
    last.tablesMs = performance.now() - now;
    ui.lastRender = last;
    ui.renderLog.push(last);
    ui.renders++;
    document.body.dataset.renders = String(ui.renders);
  };
  renderSelection();
  requestAnimationFrame(() => requestAnimationFrame(done));
}

// ---- map as tables ---------------------------------------------------------------------------

function renderTables() {
  const nodeRows = document.createDocumentFragment();
  for (const n of state.map.nodes) {
    const tr = document.createElement('tr');
    tr.dataset.id = n.id;
    if (state.hidden.has(n.id)) tr.className = 'hidden-node';
    tr.append(td(n.id), td(n.kind || ''), td(n.namespace || ''), td(n.workload || ''), td(String(n.pods ?? '')));
    const shownCell = document.createElement('td');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.checked = !state.hidden.has(n.id);
    box.setAttribute('aria-label', `show ${n.id} on the map`);
    box.addEventListener('change', () => setHidden(n.id, !box.checked));
    shownCell.append(box);
    const flowsCell = document.createElement('td');
    flowsCell.append(button('flows', () => setScope({ node: n.id }), `flows of ${n.id}`));
    tr.append(shownCell, flowsCell);
    nodeRows.append(tr);
  }
  $('#nodes-table tbody').replaceChildren(nodeRows);

  const edgeRows = document.createDocumentFragment();
  for (const e of state.map.edges) {
    const tr = document.createElement('tr');
    tr.dataset.source = e.source;
    tr.dataset.destination = e.destination;
    const reasons = Object.entries(e.drop_reasons || {}).map(([k, v]) => `${k}: ${v}`).join(', ');
    for (const v of [e.source, e.destination, e.port, e.protocol, e.flows, e.connections, e.bytes_sent, e.bytes_received, e.drops, reasons,
      e.http_requests, e.http_errors, e.http_latency_p50_ms, e.http_latency_p99_ms, e.dns_queries, e.dns_errors, e.tcp_rtt_p50_us, e.tcp_retransmits]) tr.append(td(String(v ?? '')));
    const flowsCell = document.createElement('td');
    flowsCell.append(button('flows', () => setScope({ from: e.source, to: e.destination }), `flows from ${e.source} to ${e.destination}`));
    tr.append(flowsCell);
    edgeRows.append(tr);
  }
  $('#edges-table tbody').replaceChildren(edgeRows);

  renderHiddenList();
}

function renderHiddenList() {
  const list = document.createDocumentFragment();
  for (const id of [...state.hidden].sort()) {
    const li = document.createElement('li');
    li.append(`${id} `, button('show', () => setHidden(id, false), `show ${id}`));
    list.append(li);
  }
  $('#hidden-list').replaceChildren(list);
}

function setHidden(id, hide) {
  if (hide) state.hidden.add(id);
  else state.hidden.delete(id);
  localStorage.setItem('flowctl.hidden', JSON.stringify([...state.hidden]));
  if (!state.map) return;
  // Only this node's row and the hidden list change: rebuilding thousands of rows costs seconds of layout.
  const tr = $('#nodes-table tbody').querySelector(`tr[data-id="${CSS.escape(id)}"]`);
  if (tr) {
    tr.classList.toggle('hidden-node', hide);
    tr.querySelector('input[type=checkbox]').checked = !hide;
  }
  renderHiddenList();
  render(false);
}

function renderSelection() {
  const box = $('#selection');
  const s = state.scope;
  if (!s || !state.map) return box.replaceChildren(Object.assign(document.createElement('p'), { textContent: 'Click a node or an edge to see its flows.' }));
  const dl = document.createElement('dl');
  const add = (k, v) => dl.append(Object.assign(document.createElement('dt'), { textContent: k }), Object.assign(document.createElement('dd'), { textContent: String(v) }));
  const parts = [];
  if (s.node) {
    const n = state.map.nodes.find((x) => x.id === s.node);
    add('node', s.node);
    if (n) add('pods', n.pods);
    const edges = state.map.edges.filter((e) => e.source === s.node || e.destination === s.node);
    add('edges', edges.length);
    add('flows', edges.reduce((a, e) => a + e.flows, 0));
    parts.push(dl, button(state.hidden.has(s.node) ? 'Show on the map' : 'Hide from the map', () => setHidden(s.node, !state.hidden.has(s.node))));
  } else {
    const edges = state.map.edges.filter((e) => e.source === s.from && e.destination === s.to);
    add('from', s.from);
    add('to', s.to);
    add('ports', edges.map((e) => `${e.port}/${e.protocol}`).join(', '));
    const sum = (k) => edges.reduce((a, e) => a + (e[k] || 0), 0);
    for (const k of ['flows', 'connections', 'bytes_sent', 'bytes_received', 'drops', 'http_requests', 'http_errors', 'dns_queries', 'dns_errors']) add(k.replace('_', ' '), sum(k));
    parts.push(dl);
  }
  box.replaceChildren(...parts);
}

// ---- flows -----------------------------------------------------------------------------------

function setScope(scope) {
  state.scope = scope;
  const el = $('#scope');
  el.replaceChildren();
  if (scope) {
    el.append(scope.node ? `of ${scope.node} ` : `from ${scope.from} to ${scope.to} `, button('×', () => setScope(null), 'show all flows'));
  }
  renderSelection();
  startFlows();
}

function endpoint(ep, ip, port) {
  const name = ep?.namespace && ep?.pod_name ? `${ep.namespace}/${ep.pod_name}` : ip || (ep?.labels || []).find((l) => l.startsWith('reserved:')) || '?';
  return port ? `${name}:${port}` : name;
}

function summary(f) {
  const l7 = f.l7;
  if (l7?.http) return `${l7.type === 'RESPONSE' ? `HTTP ${l7.http.code} ` : ''}${l7.http.method || ''} ${l7.http.url || ''}${l7.latency_ns ? ` (${(Number(l7.latency_ns) / 1e6).toFixed(1)} ms)` : ''}`;
  if (l7?.dns) return `DNS ${l7.type === 'RESPONSE' ? `answer rcode ${l7.dns.rcode || 0}` : 'query'} ${l7.dns.query || ''} ${(l7.dns.ips || []).join(',')}`;
  if (f.verdict === 'DROPPED') return `drop: ${f.drop_reason_desc || 'unknown'}`;
  const flags = f.l4?.TCP?.flags;
  if (flags) return Object.keys(flags).filter((k) => flags[k]).join(', ');
  return f.Summary || '';
}

function flowRow(item) {
  const f = item.flow;
  const l4 = f.l4 || {};
  const p = l4.TCP || l4.UDP || l4.SCTP || {};
  const tr = document.createElement('tr');
  if (f.verdict === 'DROPPED') tr.className = 'dropped';
  tr.append(td(f.time || ''), td(f.node_name || ''), td(endpoint(f.source, f.IP?.source, p.source_port)), td(endpoint(f.destination, f.IP?.destination, p.destination_port)),
    td(f.verdict || ''), td(f.l7 ? `L7 ${f.l7.type || ''}` : f.Type || ''), td(summary(f)));
  return tr;
}

function flowParams() {
  const p = new URLSearchParams();
  for (const el of $('#flow-filters').elements) {
    if (el.name && el.value.trim()) p.append(el.name, el.value.trim());
  }
  const s = state.scope;
  if (s?.node) p.set('node', s.node);
  else if (s) {
    p.set('from', s.from);
    p.set('to', s.to);
  }
  // Unscoped, the newest flows the server's filters pass; scoped, the map's window (the scope is
  // matched in the ui server, after the server's filters).
  if (s) p.set('since', $('#since').value);
  else p.set('last', '500');
  if ($('#live').checked) p.set('follow', 'true');
  return p;
}

function flowsStatus(msg, error = false) {
  const el = $('#flows-status');
  el.textContent = msg;
  el.classList.toggle('error', error);
}

async function startFlows() {
  state.stream?.abort();
  const ctl = new AbortController();
  state.stream = ctl;
  state.rows = [];
  ui.flowsDone = false;
  $('#flows-table tbody').replaceChildren();
  flowsStatus('loading…');
  let r;
  try {
    r = await fetch(`/api/flows?${flowParams()}`, { signal: ctl.signal });
  } catch (e) {
    if (!ctl.signal.aborted) flowsStatus(`flows: ${e.message}`, true);
    return;
  }
  if (!r.ok) return flowsStatus(`flows: ${(await r.text()).trim()}`, true);
  let pending = [];
  let lost = 0;
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (ctl.signal.aborted) return;
    const tbody = $('#flows-table tbody');
    const frag = document.createDocumentFragment();
    for (let i = pending.length - 1; i >= 0; i--) frag.append(flowRow(pending[i]));
    tbody.prepend(frag);
    pending = [];
    while (tbody.rows.length > MAX_ROWS) tbody.lastElementChild.remove();
    flowsStatus(`${state.rows.length} flows shown${lost ? `, ${lost} lost events reported by the server` : ''}${$('#live').checked ? ', following' : ''}`);
  };
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const item = JSON.parse(line);
        if (item.lost_events) lost += Number(item.lost_events.num_events_lost || 0);
        if (!item.flow) continue;
        state.rows.push({ line, item });
        if (state.rows.length > MAX_ROWS) state.rows.shift();
        pending.push(item);
        if (pending.length > MAX_ROWS) pending.shift();
      }
      if (!scheduled && pending.length) {
        scheduled = true;
        requestAnimationFrame(flush);
      }
    }
    flush();
    if (!ctl.signal.aborted) {
      ui.flowsDone = true;
      flowsStatus(`${state.rows.length} flows shown${lost ? `, ${lost} lost events reported by the server` : ''}`);
    }
  } catch (e) {
    if (!ctl.signal.aborted) flowsStatus(`flows: stream ended: ${e.message}`, true);
  }
}

function download() {
  const text = state.rows.map((r) => `${r.line}\n`).join('');
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type: 'application/x-ndjson' }));
  a.download = 'flows.jsonl';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

// ---- wiring ------------------------------------------------------------------------------------

$('#flow-filters').addEventListener('submit', (ev) => {
  ev.preventDefault();
  startFlows();
});
$('#flow-filters').elements.verdict.addEventListener('change', () => startFlows());
$('#live').addEventListener('change', () => startFlows());
$('#download').addEventListener('click', download);
$('#refresh').addEventListener('click', () => loadMap());
$('#since').addEventListener('change', () => {
  loadMap();
  startFlows();
});
setInterval(() => {
  if ($('#auto-refresh').checked && !document.hidden) loadMap();
}, 10_000);

loadMap();
startFlows();
