// Reverse-mode automatic differentiation: a Variable is a tensor plus the tape node that
// produced it. Ops (see Ops*.swift) record a backward closure only when gradients are
// enabled and some input requires a gradient.
//
// Dimension legend: shapes are those of `value`; gradients have the shape of their value.
import Foundation

/// The record of how a Variable was computed: its inputs and a function mapping the
/// gradient of the output to gradients of the inputs.
@usableFromInline
final class TapeNode {
    /// Inputs of the op, in the order the backward closure returns gradients for them.
    var parents: [Variable]
    /// Maps (output gradient, which parents need a gradient) to per-parent gradients.
    let backward: (Tensor, [Bool]) -> [Tensor?]
    /// For a slice of its one parent: where along which axis. The engine then adds the
    /// output gradient into that part of the parent's gradient in place, instead of calling
    /// `backward` for a zero-padded full-size gradient and adding that (the q, k and v
    /// pieces of a fused projection would build three and add two).
    let slice: (axis: Int, range: Range<Int>)?

    init(parents: [Variable], slice: (axis: Int, range: Range<Int>)? = nil,
         backward: @escaping (Tensor, [Bool]) -> [Tensor?]) {
        self.parents = parents
        self.slice = slice
        self.backward = backward
    }
}

/// A differentiable tensor: a value, an optional accumulated gradient and the op that made it.
public final class Variable {
    /// The forward value.
    public var value: Tensor
    /// Accumulated gradient (summed across `backward()` calls until `zeroGrad()`); kept for
    /// leaves that require a gradient, and for interior Variables with `retainsGrad`.
    public var grad: Tensor?
    /// Whether gradients flow to (leaf) or through (interior) this Variable.
    public var requiresGrad: Bool
    /// Keep the gradient of an interior (non-leaf) Variable after `backward()`.
    public var retainsGrad = false
    /// Optional name for diagnostics (e.g. a checkpoint parameter path).
    public var name: String?
    @usableFromInline var node: TapeNode?

    /// A leaf Variable holding `value`.
    public init(_ value: Tensor, requiresGrad: Bool = false) {
        self.value = value
        self.requiresGrad = requiresGrad
    }

    /// An interior Variable produced by an op (internal: use `Ops`).
    init(_ value: Tensor, parents: [Variable], slice: (axis: Int, range: Range<Int>)? = nil,
         backward: @escaping (Tensor, [Bool]) -> [Tensor?]) {
        self.value = value
        self.requiresGrad = true
        self.node = TapeNode(parents: parents, slice: slice, backward: backward)
    }

    /// Releases the tape iteratively so deep graphs do not overflow the stack on deinit.
    deinit {
        guard var stack = node?.parents, !stack.isEmpty else { return }
        node = nil
        while var v = stack.popLast() {
            if isKnownUniquelyReferenced(&v), let n = v.node {
                stack.append(contentsOf: n.parents)
                n.parents = []
                v.node = nil
            }
        }
    }

    /// Shape of the value.
    public var shape: [Int] { value.shape }
    /// Whether this Variable was created by the user rather than by an op.
    public var isLeaf: Bool { node == nil }
    /// The single element of a one-element value.
    public var item: Float { value.item }

    /// Clears the accumulated gradient.
    public func zeroGrad() { grad = nil }

    /// A leaf sharing this value, cut from the graph, not requiring a gradient.
    public func detached() -> Variable { Variable(value) }

    /// Backpropagates from this one-element Variable (seed 1) into every leaf that requires
    /// a gradient, adding to their `grad`.
    public func backward() {
        precondition(value.count == 1, "backward() needs a one-element Variable, shape is \(shape); use backward(seed:)")
        backward(seed: Tensor(shape: value.shape, repeating: 1))
    }

    /// Backpropagates with an explicit output gradient `seed` (same shape as the value).
    public func backward(seed: Tensor) {
        precondition(seed.count == value.count, "backward seed shape \(seed.shape) != value shape \(shape)")
        guard requiresGrad else { return }
        guard node != nil else { accumulate(seed); return }
        // Topological order by iterative depth-first search over interior nodes.
        var order: [Variable] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Variable, Int)] = [(self, 0)]
        visited.insert(ObjectIdentifier(self))
        while let (v, i) = stack.popLast() {
            guard let n = v.node, i < n.parents.count else { order.append(v); continue }
            stack.append((v, i + 1))
            let p = n.parents[i]
            if p.requiresGrad && !visited.contains(ObjectIdentifier(p)) {
                visited.insert(ObjectIdentifier(p))
                stack.append((p, 0))
            }
        }
        var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): seed.reshaped(value.shape)]
        for v in order.reversed() {
            guard let g = grads.removeValue(forKey: ObjectIdentifier(v)) else { continue }
            guard let n = v.node else { v.accumulate(g); continue }
            if v.retainsGrad { v.accumulate(g) }
            if let slice = n.slice, n.parents.count == 1 {
                let p = n.parents[0]
                guard p.requiresGrad else { continue }
                let key = ObjectIdentifier(p)
                var full = grads.removeValue(forKey: key) ?? Tensor(zeros: p.value.shape)
                Kernels.addIntoSlice(&full, g, axis: slice.axis, range: slice.range)
                grads[key] = full
                continue
            }
            let needs = n.parents.map { $0.requiresGrad }
            let pg = n.backward(g, needs)
            for (p, gp) in zip(n.parents, pg) where p.requiresGrad {
                guard let gp else { continue }
                precondition(gp.count == p.value.count,
                             "internal autograd error: gradient \(gp.shape) for value \(p.shape)")
                let key = ObjectIdentifier(p)
                if var existing = grads[key] {
                    grads[key] = nil
                    Kernels.accumulate(&existing, gp)
                    grads[key] = existing
                } else {
                    grads[key] = gp.reshaped(p.value.shape)
                }
            }
        }
    }

    /// Adds `g` to `grad` (copy-on-write keeps shared tensors intact).
    func accumulate(_ g: Tensor) {
        if var existing = grad {
            grad = nil
            Kernels.accumulate(&existing, g)
            grad = existing
        } else {
            grad = g.reshaped(value.shape)
        }
    }
}

extension Variable: CustomStringConvertible {
    public var description: String {
        "Variable(\(name.map { "\($0), " } ?? "")shape: \(shape), requiresGrad: \(requiresGrad)\(isLeaf ? "" : ", interior"))"
    }
}

/// Global (per-thread) autodiff switches.
public enum Autograd {
    /// Thread-local key; a non-nil value means "gradients disabled on this thread".
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    /// Whether ops on this thread record a tape (default true).
    public static var isGradEnabled: Bool {
        get { pthread_getspecific(key) == nil }
        set { pthread_setspecific(key, newValue ? nil : UnsafeRawPointer(bitPattern: 1)) }
    }

    /// Runs `body` with gradient recording disabled on this thread, restoring the previous state.
    public static func withNoGrad<R>(_ body: () throws -> R) rethrows -> R {
        let previous = isGradEnabled
        isGradEnabled = false
        defer { isGradEnabled = previous }
        return try body()
    }

    /// Whether an op with these inputs must record a tape node.
    @inlinable
    public static func records(_ inputs: Variable...) -> Bool {
        guard inputs.contains(where: { $0.requiresGrad }) else { return false }
        return isGradEnabled
    }

    /// Whether an op with these inputs must record a tape node.
    @inlinable
    public static func records(_ inputs: [Variable]) -> Bool {
        guard inputs.contains(where: { $0.requiresGrad }) else { return false }
        return isGradEnabled
    }
}
