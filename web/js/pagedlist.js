// pagedlist.js - a list read page by page through an API's nextCursor, as
// the events and suppression views show it: one load in flight (a reload
// aborts the one before, and a "load more" still out), everything aborted
// when the view goes away, and the "Load more" button wired.

/**
 * pagedList({ signal, fetchPage, onPage, onError, moreButton, busyLabel })
 *   signal      the view's AbortSignal: aborts whatever is in flight
 *   fetchPage   (cursor | null, signal) => Promise<{items, nextCursor}>
 *   onPage      (body, first): a page arrived; first is true after reload()
 *   onError     (error, first): a load failed (aborts are not errors)
 *   moreButton  optional button: a click loads the next page; disabled
 *               meanwhile, its text busyLabel (when given)
 * Returns { reload(), more(), cursor } (cursor: the next page's, or null).
 */
export function pagedList({ signal, fetchPage, onPage, onError, moreButton, busyLabel }) {
  let ctl = null;
  let cursor = null;
  // One listener for the view's whole life, whatever the number of reloads.
  signal.addEventListener('abort', () => { if (ctl) ctl.abort(); }, { once: true });

  const fetchInto = async (c, first, sig) => {
    try {
      const body = await fetchPage(c, sig);
      cursor = body.nextCursor || null;
      onPage(body, first);
    } catch (e) {
      if (e.name !== 'AbortError') onError(e, first);
    }
  };

  const reload = () => {
    if (ctl) ctl.abort();
    ctl = new AbortController();
    cursor = null;
    if (signal.aborted) ctl.abort();
    return fetchInto(null, true, ctl.signal);
  };

  const more = async () => {
    if (!cursor || !ctl) return;
    const label = moreButton ? moreButton.textContent : '';
    if (moreButton) {
      moreButton.disabled = true;
      if (busyLabel) moreButton.textContent = busyLabel;
    }
    try {
      await fetchInto(cursor, false, ctl.signal);
    } finally {
      if (moreButton) {
        moreButton.disabled = false;
        if (busyLabel) moreButton.textContent = label;
      }
    }
  };
  if (moreButton) moreButton.addEventListener('click', more);

  return { reload, more, get cursor() { return cursor; } };
}
