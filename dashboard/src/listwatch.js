// A list-then-watch cache of one collection, the browser's informer.
//
// Contract: start() lists the collection page by page (`limit`/`continue`), then watches from the
// list's resourceVersion and applies ADDED/MODIFIED/DELETED to its map. A 410 Gone (an expired
// resourceVersion or continue token, as an HTTP status or an ERROR event) relists from scratch;
// a watch that ends (the server's timeout) is resumed from the last resourceVersion seen. Other
// failures are reported (state.error) and retried with exponential backoff (backoffMs doubling
// to maxBackoffMs, jittered, reset by a successful list or event), except 401 and 403: those end
// it (retrying cannot help, and each refusal would be audited).
//
// onChange(items, state) is called at most once per `batchMs`, and after the first page of the
// first list, with the current items and {version, loaded, error}. `items` is a Map keyed by
// namespace/name, read-only for the receiver and updated in place: compare `state.version`.
// stop() ends it; nothing is called after stop() returns.
//
// `list(query, signal)` resolves to a List object; `watch(query, onEvent, signal, onOpen)` calls
// onOpen() once the stream is open and resolves when it ends; stop() aborts both through
// `signal`. A watch that ends within minWatchMs without an event counts as a failure.
// `progressive: false` (a restart of a list the caller already shows) keeps the first list whole. Both reject with an error whose `status`
// is the HTTP status (410 for Gone). They are injected so that the logic is tested without a
// server (test/listwatch.test.js).

export function keyOf(obj) {
  const m = obj.metadata || {};
  return m.namespace ? `${m.namespace}/${m.name}` : m.name;
}

// A first page of 500 (shown at once), then pages of 2000: in Chromium each request of a list
// costs about 30 ms beyond its bytes (10,000 nodes: 1.3 s in pages of 500, 0.6 s in pages of
// 2000; docs/performance.md, "Dashboard").
export class ListWatch {
  constructor({ list, watch, onChange, firstPageSize = 500, pageSize = 2000, batchMs = 100, backoffMs = 1000, maxBackoffMs = 30000, minWatchMs = 1000, progressive = true }) {
    this.list_ = list;
    this.watch_ = watch;
    this.onChange_ = onChange;
    this.firstPageSize_ = firstPageSize;
    this.pageSize_ = pageSize;
    this.batchMs_ = batchMs;
    this.backoffMs_ = backoffMs;
    this.maxBackoffMs_ = maxBackoffMs;
    this.minWatchMs_ = minWatchMs;
    this.progressive_ = progressive;
    this.failures_ = 0; // consecutive failures other than 410
    this.gone_ = 0; // consecutive 410s
    this.sleepTimer_ = null;
    this.items_ = new Map();
    this.rv_ = '';
    this.loaded_ = false;
    this.version_ = 0;
    this.error_ = null;
    this.stopped_ = false;
    this.abort_ = null;
    this.timer_ = null;
    this.relists = 0; // how many times it listed (1 + the relists after 410): tests read it
  }

  start() {
    this.run_();
    return this;
  }

  stop() {
    this.stopped_ = true;
    if (this.abort_) this.abort_.abort();
    if (this.timer_) clearTimeout(this.timer_);
    if (this.sleepTimer_) clearTimeout(this.sleepTimer_);
    this.timer_ = null;
  }

  async run_() {
    let needList = true;
    while (!this.stopped_) {
      // One controller per attempt, made before it starts: stop() aborts whatever is in flight.
      this.abort_ = new AbortController();
      const signal = this.abort_.signal;
      try {
        if (needList) {
          await this.relist_(signal);
          if (this.stopped_) return;
          needList = false;
        }
        let opened = 0;
        let events = 0;
        await this.watch_(
          { resourceVersion: this.rv_ },
          (e) => {
            events++;
            this.apply_(e);
          },
          signal,
          () => {
            // The stream is open: whatever failed before has recovered.
            opened = Date.now();
            if (this.error_) {
              this.error_ = null;
              this.emit_(true);
            }
          },
        );
        if (this.stopped_) return;
        if (events === 0 && Date.now() - opened < this.minWatchMs_) {
          // Ended at once with nothing (a proxy, an empty body): a failure, not a timeout, so
          // that reopening it backs off instead of spinning.
          this.failures_++;
          await this.sleep_(this.failures_);
          continue;
        }
        // The server ended the watch (its timeout): resume from where it stood.
        this.gone_ = 0;
        this.failures_ = 0;
      } catch (err) {
        this.abort_.abort(); // a throw from apply_ leaves the stream open
        if (this.stopped_) return;
        const status = err && err.status;
        if (status === 401 || status === 403) {
          this.error_ = err;
          this.emit_(true);
          return;
        }
        if (status === 410) {
          // Relist at once; a server that keeps answering Gone is relisted with backoff.
          needList = true;
          this.gone_++;
          if (this.gone_ > 1) await this.sleep_(this.gone_ - 1);
          continue;
        }
        this.error_ = err;
        this.emit_(true);
        this.failures_++;
        await this.sleep_(this.failures_);
      }
    }
  }

  // Waits backoffMs * 2^(n-1), at most maxBackoffMs, jittered to half to full.
  sleep_(n) {
    const base = Math.min(this.maxBackoffMs_, this.backoffMs_ * 2 ** Math.min(n - 1, 16));
    return new Promise((r) => {
      this.sleepTimer_ = setTimeout(r, base / 2 + Math.random() * (base / 2));
    });
  }

  async relist_(signal) {
    const fresh = new Map();
    let cont = '';
    let rv = '';
    this.relists++;
    // The first list shows its pages as they come (state.loaded stays false until the last); a
    // relist keeps showing the previous items until it has them all.
    const progressive = this.progressive_ && !this.loaded_;
    if (progressive) this.items_ = fresh;
    do {
      const q = { limit: cont ? this.pageSize_ : this.firstPageSize_ };
      if (cont) q.continue = cont;
      // A 410 here (the continue token expired) rejects: run_ relists from the first page.
      const page = await this.list_(q, signal);
      if (this.stopped_) return;
      for (const item of page.items || []) fresh.set(keyOf(item), item);
      cont = (page.metadata && page.metadata.continue) || '';
      rv = (page.metadata && page.metadata.resourceVersion) || rv;
      if (progressive && cont && !q.continue) {
        // The first page at once; the rest when all are in (each emit re-renders the whole
        // list, and 20 renders of 10,000 rows cost more than they show).
        this.version_++;
        this.emit_(true);
      }
    } while (cont);
    this.items_ = fresh;
    this.version_++;
    this.rv_ = rv;
    this.loaded_ = true;
    this.error_ = null;
    this.failures_ = 0;
    this.emit_(true);
  }

  apply_(event) {
    const obj = event.object || {};
    if (event.type === 'ERROR') {
      const err = new Error(obj.message || 'watch error');
      err.status = obj.code;
      throw err;
    }
    const rv = obj.metadata && obj.metadata.resourceVersion;
    if (rv) this.rv_ = rv;
    this.failures_ = 0;
    this.gone_ = 0;
    if (event.type === 'BOOKMARK') return;
    if (event.type === 'DELETED') this.items_.delete(keyOf(obj));
    else this.items_.set(keyOf(obj), obj);
    this.version_++;
    this.error_ = null;
    this.emit_(false);
  }

  state_() {
    return { version: this.version_, loaded: this.loaded_, error: this.error_ };
  }

  emit_(now) {
    if (this.stopped_) return;
    if (now) {
      if (this.timer_) clearTimeout(this.timer_);
      this.timer_ = null;
      this.onChange_(this.items_, this.state_());
      return;
    }
    if (this.timer_) return;
    this.timer_ = setTimeout(() => {
      this.timer_ = null;
      if (!this.stopped_) this.onChange_(this.items_, this.state_());
    }, this.batchMs_);
  }
}
