// Training support: one forward + backward with block-wise recomputation (gradient
// checkpointing) over the one forward definition (Forward.swift). The forward runs block
// by block without a tape, keeping only each block's
// input [N, D]; the loss sees hidden states as leaf Variables; the backward then replays one
// block at a time on the tape (same dropout seeds) and chains the input gradients. Kept
// blocks are recorded on the tape in the forward pass instead; replayed blocks store their
// linear layers' outputs, which their replay reuses instead of recomputing the products.
//
// Dimension legend: B batch, T positions, N = B*T rows, D hidden, L blocks.
import Numerics

extension TransformerModel {
    /// Computes `loss(outputs)` and accumulates gradients into every trainable parameter (base
    /// or LoRA) and every intervention delta that requires them. Returns the loss value. With
    /// `checkpointing` other than `.none` only block inputs are kept between forward and
    /// backward (see `CheckpointPolicy`); the outputs and gradients are the same either way.
    public func trainingBackward(_ batch: TokenBatch, options: DifferentiableOptions = DifferentiableOptions(),
                                 checkpointing: CheckpointPolicy = .recompute,
                                 loss: (DifferentiableOutput) throws -> Variable) throws -> Float {
        guard case .blocks(let keptBlocks, let replayedBlocks) = checkpointing else {
            let l = try loss(try forwardDifferentiable(batch, options: options))
            l.backward()
            return l.item
        }
        try checkIds(batch.ids)
        let layers = config.numLayers, n = batch.batch * batch.length
        let positions = batch.positions(options.positions)
        let be = autogradBackend(batch, positions: positions, options: options)
        let g = geometry(batch, positions: positions)
        let ivs = options.interventions
        // Forward without a tape, keeping block inputs; the last `keptBlocks` blocks are
        // recorded on the tape instead (their input leaf and output kept for the backward).
        let firstKept = layers - max(0, min(layers, keptBlocks))
        let firstReplayed = firstKept - max(0, min(firstKept, replayedBlocks))
        var tapes: [Int: ProductTape] = [:]
        var inputs: [Tensor] = []
        var recorded: [Int: (input: Variable, output: Variable)] = [:]
        func block(_ i: Int, _ x: Variable) -> Variable {
            be.willRun(block: i)
            return intervene(be, runBlock(be, spec: spec.blocks[i], layer: i, x: x), after: i, ivs, g)
        }
        var x = Autograd.withNoGrad { embedding(be, g, ivs).value }
        inputs.append(x)
        for i in 0..<layers {
            if i >= firstKept {
                let v = Variable(x, requiresGrad: true)
                let y = block(i, v)
                recorded[i] = (v, y)
                x = y.value
            } else {
                if i >= firstReplayed {
                    tapes[i] = ProductTape()
                    be.products = tapes[i]
                }
                x = Autograd.withNoGrad { block(i, Variable(x)).value }
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
        differentiableHeads(be, top, g, options: options, into: &out)
        let l = try loss(out)
        l.backward()
        // Backward block by block.
        var grad = top.grad ?? Tensor(zeros: [n, config.hiddenSize])
        for i in stride(from: layers - 1, through: 0, by: -1) {
            if i + 1 < layers, let extra = leaves[i + 1]?.grad { Kernels.accumulate(&grad, extra) }
            if let r = recorded.removeValue(forKey: i) {
                r.output.backward(seed: grad)
                grad = r.input.grad ?? Tensor(zeros: [n, config.hiddenSize])
                continue
            }
            let v = Variable(inputs[i], requiresGrad: true)
            be.products = tapes.removeValue(forKey: i)
            be.products?.startReplay()
            let y = block(i, v)
            be.products = nil
            y.backward(seed: grad)
            grad = v.grad ?? Tensor(zeros: [n, config.hiddenSize])
        }
        if let extra = leaves[0]?.grad { Kernels.accumulate(&grad, extra) }
        let embedTrainable = parameters[spec.embed + ".weight"]?.requiresGrad == true
            || spec.positionEmbed.map { parameters[$0 + ".weight"]?.requiresGrad == true } == true
            || ivs.contains { $0.layer == .embedding && $0.delta.requiresGrad }
        if embedTrainable {
            embedding(be, g, ivs).backward(seed: grad)
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
