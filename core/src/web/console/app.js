// The program-executor web console: a single page over the HTTP API of
// docs/api.md. Plain ES2020, no build step, no dependencies: `serve` embeds
// this file in the binary. Every string from the API reaches the page through
// textContent or setAttribute, never as HTML.
'use strict';

(() => {
  const POLL_MS = 2000;
  const TOKEN_KEY = 'program-executor.token';
  const STATES = ['running', 'finished', 'errored', 'cancelled'];
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);

  // el('a', {href: '#/', className: 'x'}, 'text', childNode): builds an element;
  // string children become text nodes, so they are never parsed as markup.
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === 'className') node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function message(node, text, kind) {
    node.textContent = text || '';
    node.className = 'message' + (kind ? ' ' + kind : '');
    show(node, Boolean(text));
  }

  const pad = (n) => String(n).padStart(2, '0');

  // The API's timestamps are UTC; the console shows them in UTC, as the
  // command line and the logs do, so they can be compared at a glance.
  function utc(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso;
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
      `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`;
  }

  function timeNode(iso) {
    return el('time', {datetime: iso || '', title: iso || ''}, utc(iso));
  }

  const hhmm = (iso) => {
    const d = new Date(iso);
    return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  };

  function badge(state) {
    return el('span', {className: 'badge state-' + state}, state);
  }

  function programLink(runId) {
    return el('a', {href: '#/programs/' + encodeURIComponent(runId), className: 'mono'}, runId);
  }

  // Where a program stands, as in: load (step 2 of 3). Steps are numbered
  // from 1, as `status` and resume's fromStep number them; `step` counts from 0.
  function whereText(p) {
    const total = p.jobs.length;
    if (p.state === 'finished') return `all ${total} done`;
    return `${p.currentJob ?? p.jobs[p.step]} (step ${p.step + 1} of ${total})`;
  }

  // --- the API ---------------------------------------------------------------

  let token = sessionStorage.getItem(TOKEN_KEY);

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && problem.detail) || `HTTP ${status}`);
      this.status = status;
      this.problem = problem || {};
      this.handled = false; // true once a 401 sent the user to the login form
    }
  }

  async function api(method, path, body, signal) {
    const headers = {Authorization: 'Bearer ' + token, Accept: 'application/json'};
    const init = {method, headers, signal, cache: 'no-store'};
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError(0, {title: 'No answer', detail: 'the console cannot reach the server'});
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (e) {
      data = null; // a proxy's HTML error page, say: reported by status below
    }
    if (response.ok) return data;
    const error = new ApiError(response.status,
      data && typeof data === 'object' ? data : {title: `HTTP ${response.status}`, detail: text.slice(0, 200)});
    if (response.status === 401) {
      error.handled = true;
      logOut('The server no longer accepts this token (401 Unauthorized). Log in again.');
    }
    throw error;
  }

  // The line shown for a refused request: the problem's title and detail
  // (RFC 9457), with the one case an operator must act on spelled out.
  function problemText(error) {
    if (error.status === 403) {
      return 'Refused (403 Forbidden): your token is a viewer token. ' +
        'Creating, cancelling and resuming programs needs an operator token.';
    }
    const p = error.problem || {};
    const title = p.title || (error.status ? `HTTP ${error.status}` : 'Error');
    return p.detail ? `${title}: ${p.detail}` : title;
  }

  // --- views -----------------------------------------------------------------
  // Each view: `mount(route)` once when it is opened, `sync(route)` when the
  // hash changes but the view stays, `url(route)` for the data (one path, or
  // an array of paths whose answers `render` gets as an array), `render(data)`
  // on every refresh whose answer differs from the last one.

  const overview = {
    template: 'tpl-overview',
    title: 'Overview',
    nav: 'nav-overview',
    mount() {},
    sync() {},
    url: () => '/api/v1/stats',
    render(stats) {
      for (const state of STATES) $('count-' + state).textContent = String((stats.counts || {})[state] ?? 0);
      drawChart($('throughput-chart'), stats.stepsPerMinute || []);
      const rows = (stats.recentErrors || []).map((p) => el('tr', {'data-run-id': p.runId},
        el('td', null, programLink(p.runId)),
        el('td', null, p.currentJob ?? ''),
        el('td', {className: 'error-text'}, p.error ?? ''),
        el('td', {className: 'nowrap'}, timeNode(p.erroredAt))));
      $('recent-errors').tBodies[0].replaceChildren(...rows);
      show($('recent-errors-empty'), rows.length === 0);
    },
  };

  // 60 bars scaled to the busiest minute; labels give the scale (the maximum)
  // and the time span (first and last minute), a <title> per bar the exact value.
  function drawChart(chart, minutes) {
    const box = {left: 56, right: 1092, top: 14, bottom: 196};
    const max = Math.max(1, ...minutes.map((m) => m.steps));
    const total = minutes.reduce((sum, m) => sum + m.steps, 0);
    $('throughput-total').textContent = `(${total} steps)`;
    const nodes = [
      svg('line', {x1: box.left, y1: box.top, x2: box.right, y2: box.top, class: 'grid-line'}),
      svg('line', {x1: box.left, y1: box.bottom, x2: box.right, y2: box.bottom, class: 'axis'}),
      svg('text', {x: box.left - 6, y: box.top + 4, 'text-anchor': 'end', class: 'label'}, String(max)),
      svg('text', {x: box.left - 6, y: box.bottom + 4, 'text-anchor': 'end', class: 'label'}, '0'),
    ];
    const slot = (box.right - box.left) / Math.max(minutes.length, 1);
    minutes.forEach((m, i) => {
      const height = (m.steps / max) * (box.bottom - box.top);
      const bar = svg('rect', {
        x: (box.left + i * slot + 1).toFixed(1), y: (box.bottom - height).toFixed(1),
        width: Math.max(slot - 2, 1).toFixed(1), height: height.toFixed(1), class: 'bar',
      });
      bar.append(svg('title', {}, `${hhmm(m.minute)} UTC: ${m.steps} steps`));
      nodes.push(bar);
    });
    if (minutes.length > 0) {
      const y = box.bottom + 20;
      nodes.push(svg('text', {x: box.left, y, class: 'label'}, hhmm(minutes[0].minute) + ' UTC'));
      nodes.push(svg('text', {x: box.right, y, 'text-anchor': 'end', class: 'label'},
        hhmm(minutes[minutes.length - 1].minute) + ' UTC'));
    } else {
      nodes.push(svg('text', {x: 574, y: 110, 'text-anchor': 'middle', class: 'label'}, 'no data'));
    }
    chart.replaceChildren(...nodes);
  }

  const LIST_PARAMS = ['state', 'job', 'cursor', 'limit'];
  let knownJobs = null; // GET /api/v1/jobs, asked once per page load

  const programs = {
    template: 'tpl-programs',
    title: 'Programs',
    nav: 'nav-programs',
    nextCursor: null,
    mount(route) {
      $('filter-form').addEventListener('submit', (e) => {
        e.preventDefault();
        go({state: $('filter-state').value, job: $('filter-job').value.trim()});
      });
      // The pager sits under the table: a new page is read from its top.
      $('first-page').addEventListener('click', () => {
        go(filters());
        window.scrollTo(0, 0);
      });
      $('next-page').addEventListener('click', () => {
        if (!programs.nextCursor) return;
        go({...filters(), cursor: programs.nextCursor});
        window.scrollTo(0, 0);
      });
      $('create-form').addEventListener('submit', (e) => {
        e.preventDefault();
        createProgram();
      });
      loadKnownJobs();
      this.sync(route);
    },
    // The filter fields show what the table shows (after Back, say).
    sync(route) {
      $('filter-state').value = route.params.get('state') || '';
      $('filter-job').value = route.params.get('job') || '';
      $('first-page').disabled = !route.params.get('cursor');
    },
    url(route) {
      const query = new URLSearchParams();
      for (const key of LIST_PARAMS) {
        if (route.params.get(key)) query.set(key, route.params.get(key));
      }
      const qs = query.toString();
      return '/api/v1/programs' + (qs ? '?' + qs : '');
    },
    render(page) {
      const rows = (page.programs || []).map((p) => el('tr', {'data-run-id': p.runId},
        el('td', null, programLink(p.runId)),
        el('td', null, badge(p.state)),
        el('td', null, whereText(p)),
        el('td', {className: 'num'}, String(p.stepRetryCount)),
        el('td', {className: 'nowrap'}, timeNode(p.updatedAt))));
      $('programs-table').tBodies[0].replaceChildren(...rows);
      show($('programs-empty'), rows.length === 0);
      this.nextCursor = page.nextCursor ?? null;
      $('next-page').disabled = !this.nextCursor;
    },
  };

  function filters() {
    const route = parseRoute();
    return {state: route.params.get('state') || '', job: route.params.get('job') || ''};
  }

  // Navigates to the list with these parameters (empty ones left out).
  function go(params) {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) if (value) query.set(key, value);
    const qs = query.toString();
    const hash = '#/programs' + (qs ? '?' + qs : '');
    if (location.hash === hash) refresh(); // the same hash fires no hashchange
    else location.hash = hash;
  }

  async function loadKnownJobs() {
    try {
      if (!knownJobs) knownJobs = ((await api('GET', '/api/v1/jobs')).jobs || []).map((j) => j.name);
    } catch (e) {
      return; // only a convenience: the list works without it
    }
    if (!$('job-names')) return; // the user left the list meanwhile
    $('job-names').replaceChildren(...knownJobs.map((name) => el('option', {value: name})));
    $('create-known-jobs').textContent = knownJobs.length
      ? 'Jobs the server loaded: ' + knownJobs.join(', ')
      : 'The server has loaded no jobs.';
  }

  async function createProgram() {
    const out = $('create-message');
    const jobs = $('create-jobs').value.split(',').map((s) => s.trim()).filter(Boolean);
    if (jobs.length === 0) return message(out, 'Name at least one job.', 'error');
    const body = {jobs};
    for (const [id, field] of [['create-program-data', 'programData'], ['create-job-data', 'jobData']]) {
      const text = $(id).value.trim();
      if (!text) continue;
      let value;
      try {
        value = JSON.parse(text);
      } catch (e) {
        return message(out, `${field} is not valid JSON: ${e.message}`, 'error');
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        return message(out, `${field} must be a JSON object ({...}).`, 'error');
      }
      body[field] = value;
    }
    $('create-button').disabled = true;
    message(out, 'Creating...');
    try {
      const created = await api('POST', '/api/v1/programs', body);
      location.hash = '#/programs/' + encodeURIComponent(created.runId);
    } catch (e) {
      if (!e.handled && $('create-message')) message(out, problemText(e), 'error');
    } finally {
      if ($('create-button')) $('create-button').disabled = false;
    }
  }

  const program = {
    template: 'tpl-program',
    title: 'Program',
    nav: 'nav-programs',
    current: null,
    openErrors: new Set(), // the attempts whose whole error is shown: kept across redraws
    mount(route) {
      this.current = null;
      this.openErrors = new Set();
      $('cancel-button').addEventListener('click', () => act(route.runId, 'cancel', {}));
      $('resume-button').addEventListener('click', () => {
        const text = $('resume-from-step').value.trim();
        if (!text) return act(route.runId, 'resume', {});
        const step = Number(text);
        if (!Number.isInteger(step) || step < 1) {
          return message($('action-message'), 'From step: a whole number, 1 for the first job.', 'error');
        }
        return act(route.runId, 'resume', {fromStep: step});
      });
    },
    sync() {},
    url: (route) => {
      const path = '/api/v1/programs/' + encodeURIComponent(route.runId);
      return [path, path + '/attempts'];
    },
    render([p, history]) {
      this.current = p;
      show($('program-missing'), false);
      show($('program-body'), true);
      document.title = `${p.runId} (${p.state}) - program-executor`;
      $('program-run-id').textContent = p.runId;
      const state = $('program-state');
      state.textContent = p.state;
      state.className = 'badge state-' + p.state;

      const resumable = p.state === 'errored' || p.state === 'cancelled';
      show($('cancel-button'), p.state === 'running');
      show($('resume-group'), resumable);
      show($('resume-button'), resumable);
      show($('no-actions'), p.state === 'finished');
      const from = $('resume-from-step');
      from.max = String(p.jobs.length);
      from.placeholder = `${Math.min(p.step + 1, p.jobs.length)} (where it stopped)`;

      $('program-jobs').replaceChildren(...p.jobs.map((job, i) => jobItem(p, job, i)));
      const where = p.state === 'finished'
        ? `Finished: all ${p.jobs.length} jobs done.`
        : `At step ${p.step + 1} of ${p.jobs.length}, ${p.currentJob}.`;
      $('program-where').textContent = `${where} Retries of the current step: ${p.stepRetryCount}.`;

      show($('program-error-panel'), p.error !== null && p.error !== undefined && p.error !== '');
      $('program-error').textContent = p.error ?? '';
      $('program-error-title').textContent = p.state === 'running'
        ? 'Error (the latest failure of the step it is retrying)'
        : p.state === 'finished' ? 'Error' : 'Error (why it stopped)';

      const details = [['Created', p.createdAt], ['Updated', p.updatedAt], ['Finished', p.finishedAt],
        ['Errored', p.erroredAt], ['Cancelled', p.cancelledAt]]
        .filter(([, iso]) => iso)
        .map(([name, iso]) => [name, timeNode(iso)]);
      if (p.leaseOwner) details.push(['Lease owner', el('span', {className: 'mono'}, p.leaseOwner)]);
      $('program-details').replaceChildren(...details.flatMap(([name, value]) => [el('dt', null, name), el('dd', null, value)]));

      $('program-data').textContent = JSON.stringify(p.programData ?? {}, null, 2);
      $('program-job-data').textContent = JSON.stringify(p.jobData ?? {}, null, 2);
      renderAttempts(history, this.openErrors);
    },
    // A 404 replaces the page by a message; other failures keep the last data.
    fail(error) {
      if (error.status !== 404) return false;
      show($('program-body'), false);
      message($('program-missing'), problemText(error), 'error');
      return true;
    },
  };

  // One job of the program page: done, current (running, errored or
  // cancelled there) or pending; data-status is for tests and styling.
  function jobItem(p, job, i) {
    let status = 'pending';
    let note = '';
    if (p.state === 'finished' || i < p.step) {
      status = 'done';
      note = 'done';
    } else if (i === p.step) {
      status = 'current';
      note = {running: p.stepRetryCount > 0 ? `running, retry ${p.stepRetryCount}` : 'running',
        errored: 'errored here', cancelled: 'cancelled here, not run'}[p.state] || p.state;
    }
    return el('li', {className: `job job-${status} state-${p.state}`, 'data-status': status},
      el('span', {className: 'job-name mono'}, job), ' ', el('span', {className: 'job-note'}, note));
  }

  // The outcomes of docs/operations.md ("The attempt history"); any other
  // value (a newer server) is drawn plainly, never used as a class name.
  const OUTCOMES = ['finished', 'retry', 'yield', 'errored', 'ignored', 'skipped', 'cancelled',
    'crashed', 'stale'];
  const ERROR_SHORT = 120;

  // "230 ms", "1.5 s", "2.0 min", "3.1 h", as `explain` writes durations.
  function duration(ms) {
    if (ms < 1000) return `${ms} ms`;
    if (ms < 120000) return `${(ms / 1000).toFixed(1)} s`;
    if (ms < 7200000) return `${(ms / 60000).toFixed(1)} min`;
    return `${(ms / 3600000).toFixed(1)} h`;
  }

  // An attempt's error: its first line, cut at ERROR_SHORT characters; when
  // that is not all of it, a <details> whose body is the whole text (up to
  // 64 KiB), open again after a redraw if the user had opened it.
  // The exception's type, where the job threw one, is the cell's tooltip.
  function errorCell(error, key, open, type) {
    if (error === null || error === undefined || error === '') return el('td', {className: 'muted'}, '');
    const typed = type ? {title: type} : {};
    const firstLine = error.split('\n', 1)[0];
    const short = firstLine.length > ERROR_SHORT ? firstLine.slice(0, ERROR_SHORT) + '...' : firstLine;
    if (short === error) return el('td', {className: 'error-text attempt-error', ...typed}, error);
    const details = el('details', {className: 'attempt-error'},
      el('summary', {title: 'Show the whole error'}, short === firstLine ? short + ' ...' : short),
      el('pre', {className: 'wrap'}, error));
    details.open = open.has(key);
    details.addEventListener('toggle', () => {
      if (details.open) open.add(key);
      else open.delete(key);
    });
    return el('td', {className: 'error-text', ...typed}, details);
  }

  // The program's attempts, oldest first, and the reason line of `explain`.
  // Steps are shown from 1, as on the rest of the page.
  function renderAttempts(history, open) {
    const attempts = (history && history.attempts) || [];
    const reason = $('program-reason');
    reason.textContent = (history && history.reason) || '';
    reason.className = 'reason state-' + ((history && STATES.includes(history.state)) ? history.state : 'unknown');
    $('program-attempts-count').textContent = `(${attempts.length})`;
    const rows = attempts.map((a, i) => {
      const known = OUTCOMES.includes(a.outcome);
      const key = `${a.step}:${a.attempt}:${a.startedAt}`;
      return el('tr', {className: 'attempt', 'data-outcome': a.outcome, 'data-step': String(a.step),
        'data-index': String(i)},
      el('td', {className: 'num'}, String(a.step + 1)),
      el('td', {className: 'mono'}, a.job),
      el('td', {className: 'num'}, String(a.attempt)),
      el('td', null, el('span', {className: 'outcome' + (known ? ' outcome-' + a.outcome : '')}, a.outcome)),
      el('td', {className: 'mono'}, a.worker),
      el('td', {className: 'nowrap'}, timeNode(a.startedAt)),
      el('td', {className: 'num nowrap', title: `${a.durationMs} ms, ended ${a.endedAt}`}, duration(a.durationMs)),
      errorCell(a.error, key, open, a.exceptionType));
    });
    $('program-attempts').tBodies[0].replaceChildren(...rows);
    show($('program-attempts'), rows.length > 0);
    const note = $('program-attempts-note');
    if (rows.length === 0) {
      note.textContent = 'No attempts recorded: the program has not run a step yet, the daemons run ' +
        'with history.enabled false, or its history was pruned (history.retention).';
    } else if (attempts[0].step > 0) {
      note.textContent = `No history before step ${attempts[0].step + 1}: the program was taken over ` +
        'from program-executor-js, ran with history.enabled false, or its history was pruned.';
    } else {
      note.textContent = '';
    }
    show(note, Boolean(note.textContent));
  }

  async function act(runId, action, body) {
    const out = $('action-message');
    const buttons = [$('cancel-button'), $('resume-button')];
    buttons.forEach((b) => { b.disabled = true; });
    message(out, action === 'cancel' ? 'Cancelling...' : 'Resuming...');
    try {
      const p = await api('POST', `/api/v1/programs/${encodeURIComponent(runId)}/${action}`, body);
      if (!$('action-message')) return; // the user left the page meanwhile
      message(out, action === 'cancel'
        ? (p && p.state === 'cancelled' ? 'Cancelled: its next step will be dropped.' : 'Cancel sent.')
        : `Resumed at step ${p ? p.step + 1 : body.fromStep}.`, 'ok');
      $('resume-from-step').value = '';
      refresh();
    } catch (e) {
      if (!e.handled && $('action-message')) message(out, problemText(e), 'error');
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  const notFound = {template: 'tpl-not-found', title: 'No such page', nav: null,
    mount() {}, sync() {}, url: null, render() {}};

  // --- routing and refresh -----------------------------------------------------

  function parseRoute() {
    const hash = location.hash.replace(/^#/, '') || '/';
    const q = hash.indexOf('?');
    const path = q < 0 ? hash : hash.slice(0, q);
    const params = new URLSearchParams(q < 0 ? '' : hash.slice(q + 1));
    if (path === '/' || path === '') return {view: overview, key: 'overview', params};
    if (path === '/programs' || path === '/programs/') return {view: programs, key: 'programs', params};
    const m = path.match(/^\/programs\/([^/]+)$/);
    if (m) {
      const runId = decodeURIComponent(m[1]);
      return {view: program, key: 'program:' + runId, runId, params};
    }
    return {view: notFound, key: 'not-found', params};
  }

  let active = null; // {view, key, route, lastAnswer, updated}
  let timer = null;
  let generation = 0; // a refresh whose generation is no longer current is dropped
  let inflight = null;

  function route() {
    if (!token) return showLogin('');
    show($('login-view'), false);
    show($('nav'), true);
    show($('logout'), true);
    const next = parseRoute();
    if (!active || active.key !== next.key) {
      // A new view: clone its template; forms start empty.
      $('view').replaceChildren($(next.view.template).content.cloneNode(true));
      active = {view: next.view, key: next.key, route: next, lastAnswer: null, updated: null};
      next.view.mount(next);
      document.title = next.view.title + ' - program-executor';
      for (const id of ['nav-overview', 'nav-programs']) {
        if (id === next.view.nav) $(id).setAttribute('aria-current', 'page');
        else $(id).removeAttribute('aria-current');
      }
      window.scrollTo(0, 0);
    } else {
      // Same view, other parameters (a filter, a page): keep the forms.
      active.route = next;
      active.lastAnswer = null;
      next.view.sync(next);
    }
    show($('banner'), false);
    refresh();
  }

  async function refresh() {
    clearTimeout(timer);
    if (inflight) inflight.abort();
    inflight = null;
    if (!token || !active || !active.view.url) return;
    if (document.hidden) return; // visibilitychange resumes it
    const mine = ++generation;
    const controller = new AbortController();
    inflight = controller;
    const {view, route: r} = active;
    try {
      // Several paths are asked at once and drawn together: a page never
      // shows the answers of two different refreshes side by side.
      const urls = view.url(r);
      const data = Array.isArray(urls)
        ? await Promise.all(urls.map((u) => api('GET', u, undefined, controller.signal)))
        : await api('GET', urls, undefined, controller.signal);
      if (mine !== generation) return;
      // Redraw only when something changed, so selections and hovers survive.
      const answer = JSON.stringify(data);
      if (answer !== active.lastAnswer) {
        active.lastAnswer = answer;
        view.render(data, r);
      }
      show($('banner'), false);
      stamp();
    } catch (e) {
      if (mine !== generation || e.name === 'AbortError' || e.handled) return;
      active.lastAnswer = null;
      if (!(view.fail && view.fail(e))) {
        const since = active.updated ? ` The page shows the data of ${active.updated}.` : '';
        message($('banner'), `Cannot refresh: ${problemText(e).replace(/\.$/, '')}.${since}`, 'error');
      }
    }
    if (mine === generation) timer = setTimeout(refresh, POLL_MS);
  }

  function stamp() {
    const d = new Date();
    active.updated = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    $('last-updated').textContent = 'updated ' + active.updated;
    $('last-updated').title = 'Last answer from the server, your local time: ' + d.toString();
  }

  // --- logging in and out --------------------------------------------------------

  function stop() {
    clearTimeout(timer);
    if (inflight) inflight.abort();
    inflight = null;
    generation++;
    active = null;
  }

  function showLogin(text) {
    stop();
    $('view').replaceChildren();
    show($('banner'), false);
    show($('nav'), false);
    show($('logout'), false);
    $('last-updated').textContent = '';
    document.title = 'Log in - program-executor';
    show($('login-view'), true);
    message($('login-error'), text, 'error');
    $('token-input').focus();
  }

  function logOut(text) {
    token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin(text);
  }

  // The role is not known from the token: a GET of the statistics only proves
  // the server accepts it. A viewer learns its role from the first 403.
  async function logIn(event) {
    event.preventDefault();
    const candidate = $('token-input').value.trim();
    const error = $('login-error');
    if (!candidate) return message(error, 'Paste a token first.', 'error');
    $('login-button').disabled = true;
    message(error, '');
    try {
      const response = await fetch('/api/v1/stats', {
        headers: {Authorization: 'Bearer ' + candidate, Accept: 'application/json'}, cache: 'no-store',
      });
      if (response.status === 401) return message(error, 'The server does not accept this token (401 Unauthorized).', 'error');
      // Another failure (a database down: 503) is not the token's fault: log
      // in, and the view reports the failure as it refreshes.
      token = candidate;
      sessionStorage.setItem(TOKEN_KEY, token);
      $('token-input').value = '';
      route();
    } catch (e) {
      message(error, 'The console cannot reach the server.', 'error');
    } finally {
      $('login-button').disabled = false;
    }
  }

  $('login-form').addEventListener('submit', logIn);
  $('logout').addEventListener('click', (e) => {
    e.preventDefault();
    logOut('');
  });
  window.addEventListener('hashchange', () => { if (token) route(); });
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) {
      clearTimeout(timer);
      if (inflight) inflight.abort();
    } else if (active) {
      refresh();
    }
  });
  route();
})();
