// Training support: one forward + backward with block-wise recomputation (gradient
// checkpointing). The forward runs block by block without a tape, keeping only each block's
// input [N, D]; the loss sees hidden states as leaf Variables; the backward then replays one
// block at a time on the tape (same dropout seeds) and chains the input gradients. Kept
// blocks are recorded on the tape in the forward pass instead; replayed blocks store their
// linear layers' outputs, which their replay reuses instead of recomputing the products.
//
// Dimension legend: B batch, T positions, N = B*T rows, D hidden, L blocks.
import Numerics

extension TransformerModel {
    /// Computes `loss(outputs)` and accumulates gradients into every trainable parameter (base
    /// or LoRA). Returns the loss value. With `options.checkpointing` only block inputs are
    /// kept between forward and backward; without it the whole graph is recorded.
    public func trainingBackward(_ batch: TokenBatch, options: DifferentiableOptions = DifferentiableOptions(),
                                 loss: (DifferentiableOutput) throws -> Variable) throws -> Float {
        guard options.checkpointing else {
            let out = try forwardDifferentiable(batch, options: options)
            let l = try loss(out)
            l.backward()
            return l.item
        }
        guard options.interventions.isEmpty else {
            throw ModelError.invalidInput("trainingBackward with checkpointing does not take interventions")
        }
        try checkIds(batch.ids)
        let layers = config.numLayers, n = batch.batch * batch.length
        let positions = batch.positions(options.positions)
        let be = AutogradBackend(model: self, batch: batch.batch, length: batch.length, positions: positions,
                                 mask: batch.mask, training: options.training, seed: options.seed)
        func blockSeed(_ i: Int) -> UInt64 { options.seed &+ UInt64(i) &* 0x9E37 }
        // Forward without a tape, keeping block inputs; the last `keptBlocks` blocks are
        // recorded on the tape instead (their input leaf and output kept for the backward).
        let firstKept = layers - max(0, min(layers, options.keptBlocks))
        let firstReplayed = firstKept - max(0, min(firstKept, options.replayedBlocks))
        var tapes: [Int: ProductTape] = [:]
        var inputs: [Tensor] = []
        var recorded: [Int: (input: Variable, output: Variable)] = [:]
        var x = Autograd.withNoGrad { embedVariable(ids: batch.ids, positions: positions).value }
        inputs.append(x)
        for i in 0..<layers {
            be.reseed(blockSeed(i))
            if i >= firstKept {
                let v = Variable(x, requiresGrad: true)
                let y = runBlock(be, spec: spec.blocks[i], layer: i, x: v)
                recorded[i] = (v, y)
                x = y.value
            } else {
                if i >= firstReplayed {
                    tapes[i] = ProductTape()
                    be.products = tapes[i]
                }
                x = Autograd.withNoGrad { runBlock(be, spec: spec.blocks[i], layer: i, x: Variable(x)).value }
                be.products = nil
            }
            inputs.append(x)
        }
        // Loss on leaf hidden states.
        var out = DifferentiableOutput(logits: nil, hidden: [Variable?](repeating: nil, count: layers + 1), scores: nil)
        var leaves: [Int: Variable] = [:]
        for j in 0..<layers where options.hidden.contains(j) {
            let leaf = Variable(inputs[j], requiresGrad: true)
            leaves[j] = leaf
            out.hidden[j] = leaf
        }
        let top = Variable(inputs[layers], requiresGrad: true)
        heads(top, batch: batch, options: options, into: &out)
        let l = try loss(out)
        l.backward()
        // Backward block by block.
        var g = top.grad ?? Tensor(zeros: [n, config.hiddenSize])
        for i in stride(from: layers - 1, through: 0, by: -1) {
            if i + 1 < layers, let extra = leaves[i + 1]?.grad { Kernels.accumulate(&g, extra) }
            if let r = recorded.removeValue(forKey: i) {
                r.output.backward(seed: g)
                g = r.input.grad ?? Tensor(zeros: [n, config.hiddenSize])
                continue
            }
            let v = Variable(inputs[i], requiresGrad: true)
            be.reseed(blockSeed(i))
            be.products = tapes.removeValue(forKey: i)
            be.products?.startReplay()
            let y = runBlock(be, spec: spec.blocks[i], layer: i, x: v)
            be.products = nil
            y.backward(seed: g)
            g = v.grad ?? Tensor(zeros: [n, config.hiddenSize])
        }
        if let extra = leaves[0]?.grad { Kernels.accumulate(&g, extra) }
        let embedTrainable = parameters[spec.embed + ".weight"]?.requiresGrad == true
            || spec.positionEmbed.map { parameters[$0 + ".weight"]?.requiresGrad == true } == true
        if embedTrainable {
            embedVariable(ids: batch.ids, positions: positions).backward(seed: g)
        }
        return l.item
    }

    /// Causal-LM targets for a batch: next token at each position, -100 at the last position and
    /// wherever the position or its successor is padding (transformers' shifted labels), flattened [N].
    public static func nextTokenTargets(_ batch: TokenBatch) -> [Int] {
        var targets = [Int](repeating: -100, count: batch.ids.count)
        for b in 0..<batch.batch {
            for t in 0..<(batch.length - 1) {
                let i = b * batch.length + t
                if batch.mask[i] != 0 && batch.mask[i + 1] != 0 { targets[i] = batch.ids[i + 1] }
            }
        }
        return targets
    }
}
