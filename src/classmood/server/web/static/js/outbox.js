/*
 * The student page's outbox: samples computed on this device and not yet acknowledged by the server, in memory
 * for speed and in IndexedDB so that a reload, a crash or an unreachable server loses none. Each item is
 * {sid, token, obs, kind}: the session and join token it belongs to (an earlier visit's token may differ), the
 * sample as sent ({id, ts, score, probs} for a face, {id, ts} for a tick with no face) and its kind.
 */

const DB_NAME = "classmood";
const STORE = "outbox";

/** The two kinds of sample; items stored before "no face" existed carry no kind and are faces. */
export const FACE = "face";
export const NO_FACE = "no_face";

export function kindOf(item) { return item.kind || FACE; }

function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function openDatabase() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "obs.id" });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** The outbox of this browser, with what earlier visits left in it, oldest first. Without IndexedDB (a private
 * window of some browsers) it still works, in memory only. */
export async function openOutbox() {
  const items = new Map(); // obs.id -> item, in time order
  let db = null;
  try {
    db = await openDatabase();
    const all = await done(db.transaction(STORE).objectStore(STORE).getAll());
    all.sort((a, b) => a.obs.ts - b.obs.ts).forEach((i) => items.set(i.obs.id, i));
  } catch (err) { console.warn("IndexedDB unavailable: scores are kept in memory only", err); db = null; }
  const write = (fn) => (db ? new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, "readwrite");
    fn(tx.objectStore(STORE));
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
  }) : Promise.resolve());
  return {
    size: () => items.size,
    /** The n oldest items that ``keep`` accepts. */
    oldest(n, keep = () => true) {
      const out = [];
      for (const item of items.values()) {
        if (out.length >= n) break;
        if (keep(item)) out.push(item);
      }
      return out;
    },
    ids: () => Array.from(items.keys()),
    /** Keep samples of one kind for a session; resolves once they are in IndexedDB. */
    async add(sid, token, samples, kind = FACE) {
      const rows = samples.map((obs) => ({ sid, token, obs, kind }));
      await write((store) => rows.forEach((r) => store.put(r)));
      rows.forEach((r) => items.set(r.obs.id, r));
    },
    /** Forget samples the server acknowledged (or refused for good); resolves once they left IndexedDB. */
    async remove(ids) {
      await write((store) => ids.forEach((id) => store.delete(id)));
      ids.forEach((id) => items.delete(id));
    },
  };
}
