// Elementwise kernels on contiguous buffers.
//
// Dimension legend: N element count.

/// Namespace for forward kernels (no autodiff bookkeeping).
public enum Kernels {
    /// Elementwise sum of two same-shaped tensors.
    public static func add(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.shape == b.shape, "add: shapes differ \(a.shape) vs \(b.shape)")
        return Tensor(shape: a.shape) { out in
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    for i in 0..<out.count { out[i] = pa[i] + pb[i] }
                }
            }
        }
    }
}
