package ai.mobconv;

import java.lang.reflect.Array;
import java.util.ArrayList;
import java.util.List;

/**
 * Java arrays as tensor data: a flat primitive array (float[], byte[], int[], long[]) is passed to
 * native code as is; a multi-dimensional one (float[][][][] like TFLite's) is flattened row-major
 * into a new flat array on the way in and filled from one on the way out.
 */
final class ArrayData {
  private ArrayData() {}

  /** The primitive element class of a (possibly nested) array, or null for anything else. */
  static Class<?> leafType(Object o) {
    if (o == null || !o.getClass().isArray()) {
      return null;
    }
    Class<?> c = o.getClass();
    while (c.isArray()) {
      c = c.getComponentType();
    }
    return c.isPrimitive() ? c : null;
  }

  /** Which data types a Java element type can carry. */
  static boolean accepts(Class<?> leaf, DataType t) {
    if (leaf == float.class) {
      return t == DataType.FLOAT32;
    }
    if (leaf == byte.class) {
      return t == DataType.INT8 || t == DataType.UINT8 || t == DataType.BOOL;
    }
    if (leaf == int.class) {
      return t == DataType.INT32;
    }
    if (leaf == long.class) {
      return t == DataType.INT64;
    }
    return false;
  }

  static String javaName(Object o) {
    return o == null ? "null" : o.getClass().getSimpleName();
  }

  /** Shape of a rectangular nested array; IllegalArgumentException for a ragged one. */
  static int[] shapeOf(Object o) {
    List<Integer> dims = new ArrayList<>();
    Object cur = o;
    while (cur != null && cur.getClass().isArray()) {
      int n = Array.getLength(cur);
      dims.add(n);
      if (n == 0 || !cur.getClass().getComponentType().isArray()) {
        break;
      }
      cur = Array.get(cur, 0);
    }
    int[] shape = new int[dims.size()]; // no java.util.stream: that needs Android API 24
    for (int i = 0; i < shape.length; i++) {
      shape[i] = dims.get(i);
    }
    checkRectangular(o, shape, 0);
    return shape;
  }

  private static void checkRectangular(Object o, int[] shape, int depth) {
    if (o == null || Array.getLength(o) != shape[depth]) {
      throw new IllegalArgumentException("ragged Java array: dimension " + depth + " is not "
          + shape[depth] + " everywhere");
    }
    if (depth + 1 < shape.length) {
      for (int i = 0; i < shape[depth]; i++) {
        checkRectangular(Array.get(o, i), shape, depth + 1);
      }
    }
  }

  static boolean isFlat(Object o) {
    return !o.getClass().getComponentType().isArray();
  }

  static long elements(int[] shape) {
    long n = 1;
    for (int d : shape) {
      n *= d;
    }
    return n;
  }

  /** A flat primitive array holding the nested array's values row-major. */
  static Object flatten(Object nested, Class<?> leaf, int[] shape) {
    Object flat = Array.newInstance(leaf, (int) elements(shape));
    copy(nested, flat, 0, shape, 0, true);
    return flat;
  }

  /** A new flat array for a nested one's values. */
  static Object newFlat(Class<?> leaf, int[] shape) {
    return Array.newInstance(leaf, (int) elements(shape));
  }

  /** Fills the nested array from the flat one. */
  static void unflatten(Object flat, Object nested, int[] shape) {
    copy(nested, flat, 0, shape, 0, false);
  }

  private static int copy(Object nested, Object flat, int offset, int[] shape, int depth,
      boolean toFlat) {
    if (depth == shape.length - 1) {
      if (toFlat) {
        System.arraycopy(nested, 0, flat, offset, shape[depth]);
      } else {
        System.arraycopy(flat, offset, nested, 0, shape[depth]);
      }
      return offset + shape[depth];
    }
    for (int i = 0; i < shape[depth]; i++) {
      offset = copy(Array.get(nested, i), flat, offset, shape, depth + 1, toFlat);
    }
    return offset;
  }
}
