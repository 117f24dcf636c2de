/*
 * fcgiq dashboard.  Everything a job or a client sent is put into the page
 * with textContent (never as markup): a body of "<script>" is shown, not
 * run.  URLs are relative, so the page works under any location prefix.
 */
'use strict';

(function () {
	const REFRESH_MS = 3000;
	const STATES = ['queued', 'running', 'retry', 'dead'];
	let token = null;
	let actions = false;
	let page = 0;
	let detailId = null;
	let queuesSeen = '';

	const $ = (id) => document.getElementById(id);

	/* An element with text (never markup) and classes. */
	function el(tag, text, cls) {
		const e = document.createElement(tag);
		if (text !== undefined && text !== null)
			e.textContent = String(text);
		if (cls)
			e.className = cls;
		return e;
	}

	function say(text, bad) {
		const m = $('message');
		m.textContent = text;
		m.className = bad ? 'status bad' : 'status';
	}

	function age(s) {
		if (s === null || s === undefined)
			return '–';
		if (s < 1)
			return '0s';
		if (s < 120)
			return Math.round(s) + 's';
		if (s < 7200)
			return Math.round(s / 60) + 'm';
		if (s < 172800)
			return Math.round(s / 3600) + 'h';
		return Math.round(s / 86400) + 'd';
	}

	function when(ms) {
		if (ms === null || ms === undefined || ms === 0)
			return '–';
		return new Date(ms).toISOString().replace('T', ' ')
		    .replace(/\.\d+Z$/, 'Z');
	}

	function rate(v) {
		return v >= 10 ? String(Math.round(v)) : v.toFixed(1);
	}

	async function getJSON(url) {
		const r = await fetch(url, { credentials: 'same-origin',
		    cache: 'no-store' });
		const body = await r.json().catch(() => null);
		if (!r.ok)
			throw new Error((body && body.detail) || r.statusText);
		return body;
	}

	async function act(params) {
		const q = new URLSearchParams(params);
		const r = await fetch('api/action?' + q.toString(), {
			method: 'POST', credentials: 'same-origin',
			headers: { 'X-Fcgiq-Token': token || '' },
		});
		const body = await r.json().catch(() => null);
		if (!r.ok) {
			say((body && (body.title + ': ' + body.detail)) ||
			    r.statusText, true);
			return null;
		}
		say(params.op + ': ' + body.changed + ' changed');
		refresh();
		return body;
	}

	/* A button that acts on the second click within a few seconds. */
	function button(label, params, confirmFirst) {
		const b = el('button', label);
		b.type = 'button';
		b.dataset.op = params.op;
		let armed = null;
		b.addEventListener('click', (ev) => {
			ev.stopPropagation();
			if (confirmFirst && armed === null) {
				b.textContent = 'sure? ' + label;
				b.classList.add('confirm');
				armed = setTimeout(() => {
					armed = null;
					b.textContent = label;
					b.classList.remove('confirm');
				}, 4000);
				return;
			}
			if (armed !== null)
				clearTimeout(armed);
			armed = null;
			b.disabled = true;
			act(params).finally(() => {
				b.disabled = false;
				b.textContent = label;
				b.classList.remove('confirm');
			});
		});
		return b;
	}

	function cell(tr, text, cls) {
		const td = el('td', text, cls);
		tr.appendChild(td);
		return td;
	}

	/* Rows are made once per queue and updated in place, so a button
	 * being clicked (or armed for its confirmation) survives a refresh. */
	function renderQueues(s) {
		const tb = $('queues').tBodies[0];
		const keep = new Set(s.queues.map((q) => q.name));
		for (const tr of [...tb.rows])
			if (!keep.has(tr.dataset.queue))
				tr.remove();
		for (const q of s.queues) {
			let tr = [...tb.rows].find((r) => r.dataset.queue === q.name);
			if (!tr) {
				tr = el('tr');
				tr.dataset.queue = q.name;
				cell(tr, q.name);
				for (const k of [...STATES, 'paused', 'oldest',
				    'done_per_min', 'failed_per_min'])
					cell(tr, '', k === 'paused' ? '' : 'num')
					    .dataset.k = k;
				cell(tr, null, 'act').dataset.k = 'act';
				tb.appendChild(tr);
			}
			const td = (k) => tr.querySelector(`td[data-k=${k}]`);
			for (const k of STATES)
				td(k).textContent = q[k] === null ? '…' : q[k];
			td('paused').textContent = q.paused ? 'paused' : 'no';
			td('paused').className = q.paused ? 'paused' : '';
			td('oldest').textContent = age(q.oldest_waiting_s);
			td('done_per_min').textContent = rate(q.done_per_min);
			td('failed_per_min').textContent = rate(q.failed_per_min);
			const a = td('act');
			const want = actions ? (q.paused ? 'resume' : 'pause') : '';
			if (a.dataset.op !== want) {
				a.dataset.op = want;
				a.replaceChildren();
				if (want)
					a.appendChild(button(want,
					    { op: want, queue: q.name }, want === 'pause'));
			}
		}
		const names = s.queues.map((q) => q.name).join('\n');
		if (names !== queuesSeen) {
			queuesSeen = names;
			const sel = $('filter').elements.queue;
			const cur = sel.value;
			while (sel.options.length > 1)
				sel.remove(1);
			for (const q of s.queues)
				sel.appendChild(el('option', q.name));
			sel.value = cur;
		}
	}

	const SVG = 'http://www.w3.org/2000/svg';
	function svg(tag, attrs, text) {
		const e = document.createElementNS(SVG, tag);
		for (const k in attrs)
			e.setAttribute(k, attrs[k]);
		if (text !== undefined)
			e.textContent = text;
		return e;
	}

	function renderChart(m) {
		const c = $('chart');
		const W = 720, H = 180, L = 40, R = 8, T = 8, B = 20;
		const n = m.enqueued.length;
		const max = Math.max(1, ...m.enqueued, ...m.done, ...m.failed);
		const top = niceMax(max);
		const x = (i) => L + (W - L - R) * i / Math.max(1, n - 1);
		const y = (v) => T + (H - T - B) * (1 - v / top);
		c.replaceChildren();
		for (let g = 0; g <= 4; g++) {
			const v = top * g / 4;
			c.appendChild(svg('line', { x1: L, x2: W - R, y1: y(v),
			    y2: y(v), class: 'grid' }));
			c.appendChild(svg('text', { x: L - 4, y: y(v) + 3,
			    'text-anchor': 'end', class: 'axis' }, String(v)));
		}
		for (let i = 0; i < n; i += 10) {
			const t = new Date(m.start + i * 60000);
			c.appendChild(svg('text', { x: x(i), y: H - 5,
			    'text-anchor': 'middle', class: 'axis' },
			    t.toISOString().substr(11, 5)));
		}
		for (const k of ['enqueued', 'done', 'failed']) {
			const pts = m[k].map((v, i) => x(i).toFixed(1) + ',' +
			    y(v).toFixed(1)).join(' ');
			c.appendChild(svg('polyline', { points: pts,
			    class: 'line ' + (k === 'enqueued' ? 'intake' : k) }));
		}
	}

	function niceMax(v) {
		const p = Math.pow(10, Math.floor(Math.log10(v)));
		for (const f of [1, 2, 4, 5, 10])
			if (v <= f * p)
				return f * p;
		return 10 * p;
	}

	function filterParams() {
		const f = $('filter').elements;
		const p = {};
		if (f.queue.value)
			p.queue = f.queue.value;
		if (f.state.value)
			p.state = f.state.value;
		if (f.age.value)
			p.age = f.age.value;
		return p;
	}

	function renderBulk() {
		const b = $('bulk');
		const p = filterParams();
		const key = actions + JSON.stringify(p);
		if (b.dataset.key === key)
			return;		/* an armed button stays armed */
		b.dataset.key = key;
		b.replaceChildren();
		if (!actions || p.state !== 'dead')
			return;
		const scope = (p.queue ? p.queue : 'all queues') +
		    (p.age ? ', older than ' + age(Number(p.age)) : '');
		b.appendChild(button('retry every dead job (' + scope + ')',
		    Object.assign({ op: 'retry-dead' }, p), true));
		b.appendChild(document.createTextNode(' '));
		b.appendChild(button('discard every dead job (' + scope + ')',
		    Object.assign({ op: 'discard-dead' }, p), true));
	}

	async function loadJobs() {
		const p = filterParams();
		p.page = page;
		const r = await getJSON('api/jobs?' + new URLSearchParams(p));
		const tb = $('jobs').tBodies[0];
		tb.replaceChildren();
		for (const j of r.jobs) {
			const tr = el('tr', null, 'job');
			tr.dataset.id = j.id;
			cell(tr, j.id, 'id');
			cell(tr, j.queue);
			cell(tr, j.state, 'state-' + j.state);
			cell(tr, j.attempts + '/' + j.max_attempts, 'num');
			cell(tr, when(j.created_at));
			cell(tr, when(j.finished_at));
			cell(tr, j.body_length, 'num');
			cell(tr, j.last_error, 'err');
			tr.addEventListener('click', () => showJob(j.id));
			tb.appendChild(tr);
		}
		if (r.jobs.length === 0) {
			const tr = el('tr');
			const td = cell(tr, 'no job matches (a listing looks at ' +
			    'the first ' + r.budget + ' jobs of its index)');
			td.colSpan = 8;
			tb.appendChild(tr);
		}
		$('prev').disabled = page === 0;
		$('next').disabled = !r.more;
		$('pageinfo').textContent = 'page ' + (page + 1);
	}

	async function showJob(id) {
		let j;
		try {
			j = await getJSON('api/job?id=' + encodeURIComponent(id));
		} catch (e) {
			say(id + ': ' + e.message, true);
			return;
		}
		detailId = id;
		$('detail').hidden = false;
		$('d-id').textContent = j.id;
		const dl = $('d-fields');
		dl.replaceChildren();
		const f = [['queue', j.queue], ['state', j.state],
		    ['attempts', j.attempts + ' of ' + j.max_attempts],
		    ['priority', j.priority],
		    ['created', when(j.created_at)], ['run at', when(j.run_at)],
		    ['started', when(j.started_at)],
		    ['finished', when(j.finished_at)],
		    ['method', j.method], ['request URI', j.request_uri],
		    ['content type', j.content_type],
		    ['remote address', j.remote_addr],
		    ['idempotency key', j.idempotency_key],
		    ['body', j.body_length + ' bytes (' + j.body_shown + ')'],
		    ['result', j.result_length + ' bytes (' + j.result_shown +
		     ')' + (j.result_type ? ', ' + j.result_type : '')]];
		for (const [k, v] of f) {
			dl.appendChild(el('dt', k));
			dl.appendChild(el('dd', v === null ? '–' : v));
		}
		$('d-error').textContent = j.last_error === null ? '' :
		    j.last_error;
		$('d-result').textContent = j.result === null ?
		    (j.result_shown === 'binary' ? '(binary)' : '') : j.result;
		$('d-body').textContent = j.body === null ?
		    (j.body_shown === 'binary' ? '(binary)' : '') : j.body;
		const hb = $('d-headers').tBodies[0];
		hb.replaceChildren();
		if (j.headers)
			for (const k of Object.keys(j.headers)) {
				const tr = el('tr');
				cell(tr, k);
				cell(tr, typeof j.headers[k] === 'string' ?
				    j.headers[k] : JSON.stringify(j.headers[k]));
				hb.appendChild(tr);
			}
		const a = $('d-actions');
		const key = actions + j.id + j.state;
		if (a.dataset.key === key)
			return;		/* the same buttons: keep them */
		a.dataset.key = key;
		a.replaceChildren();
		if (actions) {
			if (j.state === 'dead') {
				a.appendChild(button('retry', { op: 'retry', id: j.id }));
				a.appendChild(document.createTextNode(' '));
				a.appendChild(button('discard',
				    { op: 'discard', id: j.id }, true));
			} else if (j.state === 'queued' || j.state === 'retry') {
				a.appendChild(button('cancel',
				    { op: 'cancel', id: j.id }, true));
			}
		}
	}

	async function refresh() {
		try {
			const s = await getJSON('api/summary');
			token = s.token || null;
			actions = !!s.actions && token !== null;
			renderQueues(s);
			renderChart(s.minutes);
			renderBulk();
			const st = $('status');
			const bits = [];
			bits.push(s.helper_up === 1 ? 'helper up' :
			    s.helper_up === 0 ? 'helper DOWN' : 'helper ?');
			bits.push(s.counts_age_s === null ? 'counting…' :
			    'recounted ' + age(s.counts_age_s) + ' ago');
			bits.push(actions ? 'actions on' : 'read-only');
			bits.push('updated ' + new Date(s.now).toISOString()
			    .substr(11, 8) + 'Z');
			st.textContent = bits.join(' · ');
			st.className = s.helper_up === 0 || s.database_error ?
			    'status bad' : 'status';
			await loadJobs();
			if (detailId !== null)
				await showJob(detailId);
			document.body.dataset.loaded = String(s.now);
		} catch (e) {
			say('refresh: ' + e.message, true);
		}
	}

	document.addEventListener('DOMContentLoaded', () => {
		$('filter').addEventListener('change', () => {
			page = 0;
			renderBulk();
			loadJobs().catch((e) => say(e.message, true));
		});
		$('prev').addEventListener('click', () => {
			if (page > 0)
				page--;
			loadJobs().catch((e) => say(e.message, true));
		});
		$('next').addEventListener('click', () => {
			page++;
			loadJobs().catch((e) => say(e.message, true));
		});
		$('d-close').addEventListener('click', () => {
			detailId = null;
			$('detail').hidden = true;
		});
		refresh();
		setInterval(refresh, REFRESH_MS);
	});
})();
