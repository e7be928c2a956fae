package ai.mobconv;

import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * A native pointer that Java code may use only between {@link #acquire()} and {@link
 * #release()}. {@link #take()} (on close or by the SafetyNet) waits until no call holds it, then
 * zeroes it, so a closed object throws IllegalStateException instead of handing a freed pointer to
 * native code.
 */
final class NativeHandle {
  private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
  private final String what;
  private long value;

  NativeHandle(String what, long value) {
    this.what = what;
    this.value = value;
  }

  /** The pointer, held until {@link #release()}; IllegalStateException once closed. */
  long acquire() {
    lock.readLock().lock();
    if (value == 0) {
      lock.readLock().unlock();
      throw new IllegalStateException(what + " is closed");
    }
    return value;
  }

  /** As acquire() but never waits (0 when closed or closing); for cancel(). */
  long tryAcquire() {
    if (!lock.readLock().tryLock()) {
      return 0;
    }
    if (value == 0) {
      lock.readLock().unlock();
      return 0;
    }
    return value;
  }

  void release() {
    lock.readLock().unlock();
  }

  /** Zeroes the handle once no call holds it and returns what it was (0 if already taken). */
  long take() {
    lock.writeLock().lock();
    try {
      long v = value;
      value = 0;
      return v;
    } finally {
      lock.writeLock().unlock();
    }
  }
}
