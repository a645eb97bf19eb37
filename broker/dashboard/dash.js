/*
 * The dashboard's script, embedded in simqd.  The pages are complete
 * without it; with it, the part of the page in #live is fetched again
 * every few seconds and replaced (no reload), and the action buttons
 * post in the background and show their answer.
 */
(function () {
	'use strict';
	var live = document.getElementById('live');
	var msg = document.getElementById('msg');
	var busy = false;
	var every = 3000;

	function refresh() {
		if (busy || !live || document.hidden)
			return;
		busy = true;
		fetch(location.href, { credentials: 'same-origin' })
			.then(function (r) {
				if (r.status === 401 && msg)
					msg.textContent = 'The broker wants its ' +
					    'token again: reload to log in.';
				return r.ok ? r.text() : null;
			})
			.then(function (t) {
				if (!t)
					return;
				var d = new DOMParser().parseFromString(t, 'text/html');
				var n = d.getElementById('live');
				if (n)
					live.innerHTML = n.innerHTML;
			})
			.catch(function () {})
			.then(function () { busy = false; });
	}

	document.addEventListener('submit', function (e) {
		var f = e.target;
		if (!f.classList || !f.classList.contains('act'))
			return;
		e.preventDefault();
		fetch(f.action, {
			method: 'POST',
			credentials: 'same-origin',
			headers: { 'Accept': 'application/json' },
			body: new URLSearchParams(new FormData(f))
		}).then(function (r) {
			return r.text().then(function (t) {
				var j = null;
				try { j = JSON.parse(t); } catch (x) {}
				if (msg)
					msg.textContent = j && j.message ? j.message :
					    'HTTP ' + r.status + ': ' + t;
			});
		}).catch(function (x) {
			if (msg)
				msg.textContent = 'the broker did not answer: ' + x;
		}).then(function () { busy = false; refresh(); });
	});
	if (live)
		setInterval(refresh, every);
})();
