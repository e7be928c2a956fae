package ai.mobconv;

import java.lang.ref.PhantomReference;
import java.lang.ref.ReferenceQueue;
import java.util.Collections;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Frees the native memory of a Model or Interpreter that was never closed, once the garbage
 * collector finds it unreachable: what {@code java.lang.ref.Cleaner} does, but built from
 * PhantomReference and ReferenceQueue (Java 1.2, Android API 1), since Cleaner needs Android API
 * 33. No finalize().
 *
 * <p>{@link #register} returns an {@link Entry}; its cleanup runs at most once: either from {@link
 * Entry#clean()} (close(), on the caller's thread) or from the daemon thread "mobconv-cleaner"
 * after the object became phantom reachable. The entry set keeps every registered entry strongly
 * reachable until then (an unreachable PhantomReference would never be enqueued), and removing an
 * entry from it is the atomic step that decides who runs the cleanup, so a close() racing with the
 * collector, or two close() calls on two threads, can never free twice.
 *
 * <p>The cleanup must not refer to the registered object (it would stay reachable forever).
 */
final class SafetyNet {
  private static final ReferenceQueue<Object> QUEUE = new ReferenceQueue<>();
  private static final Set<Entry> LIVE =
      Collections.newSetFromMap(new ConcurrentHashMap<Entry, Boolean>());
  private static final AtomicLong FREED_UNCLOSED = new AtomicLong();

  static {
    Thread thread =
        new Thread(
            new Runnable() {
              @Override
              public void run() {
                drain();
              }
            },
            "mobconv-cleaner");
    thread.setDaemon(true);
    thread.start();
  }

  private SafetyNet() {}

  /** A registration: {@link #clean()} runs the cleanup now unless it already ran. */
  static final class Entry extends PhantomReference<Object> {
    private final Runnable cleanup;

    private Entry(Object referent, Runnable cleanup) {
      super(referent, QUEUE);
      this.cleanup = cleanup;
    }

    /** Runs the cleanup if no one has yet (true then); idempotent and thread-safe. */
    boolean clean() {
      if (!LIVE.remove(this)) {
        return false;
      }
      clear();
      cleanup.run();
      return true;
    }
  }

  /** Runs {@code cleanup} once {@code referent} is unreachable, unless the entry is cleaned first. */
  static Entry register(Object referent, Runnable cleanup) {
    if (referent == null || cleanup == null) {
      throw new IllegalArgumentException("SafetyNet.register: null referent or cleanup");
    }
    Entry e = new Entry(referent, cleanup);
    LIVE.add(e);
    return e;
  }

  /** Registered entries not cleaned yet (for tests). */
  static int pending() {
    return LIVE.size();
  }

  /** Cleanups the daemon thread ran for objects never closed (for tests). */
  static long freedUnclosed() {
    return FREED_UNCLOSED.get();
  }

  private static void drain() {
    while (true) {
      try {
        Entry e = (Entry) QUEUE.remove();
        if (e.clean()) {
          FREED_UNCLOSED.incrementAndGet();
        }
      } catch (InterruptedException ignored) {
        // a daemon thread: keep serving until the process exits
      } catch (Throwable t) {
        // a failing cleanup must not stop the thread that frees everything else
      }
    }
  }
}
