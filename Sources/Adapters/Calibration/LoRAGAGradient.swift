import Foundation
import LinearAlgebra
import Model

/// LoRA-GA's statistics (PEFT's `estimate_gradients`): the gradient of the loss with respect to
/// every target weight, averaged over the calibration batches (each batch's mean loss over its
/// supervised tokens, as one backward pass of PEFT's `train_step`). Only the target weights get
/// gradients: they are copied into buffers of their own for the duration, beside their gradients.
enum LoRAGAGradient {
    static func estimate(weights: ModelWeights, targets: CalibrationTargets, batches: [CalibrationBatch], lanes: Int) throws -> [String: Matrix] {
        guard !batches.isEmpty else { throw AdapterError.calibration("no calibration batches") }
        var weights = weights
        var buffers: [(path: String, values: UnsafeMutablePointer<Float>, gradient: UnsafeMutablePointer<Float>, rows: Int, cols: Int)] = []
        defer { for b in buffers { b.values.deallocate(); b.gradient.deallocate() } }
        for m in targets.modules {
            guard let w = weights.layers[m.layer][m.projection] as? Matrix else {
                throw AdapterError.calibration("\(m.path) is quantised; LoRA-GA needs the float32 weight's gradient")
            }
            let values = UnsafeMutablePointer<Float>.allocate(capacity: w.count), gradient = UnsafeMutablePointer<Float>.allocate(capacity: w.count)
            values.initialize(from: w.storage, count: w.count)
            gradient.initialize(repeating: 0, count: w.count)
            buffers.append((m.path, values, gradient, w.rows, w.cols))
            weights.layers[m.layer][m.projection] = WeightBuffer(values: values, gradient: gradient, rows: w.rows, cols: w.cols)
        }
        let model = DecoderModel(weights: weights, lanes: lanes)
        let scratch = TrainingScratch(model: model, capacityRows: batches.map(\.tokens.count).max()!, maxRank: 0)
        let none = ModelAdapters(config: weights.config)
        var used = 0
        for batch in batches where batch.supervisedTargets > 0 {
            // Split by products: lanes of a data-parallel step would add into the same dW.
            _ = model.lossAndGradients(tokens: batch.tokens, targets: batch.targets, lengths: batch.lengths, adapters: none,
                                       normalizer: Float(batch.supervisedTargets), scratch: scratch, parallelism: .products)
            used += 1
        }
        guard used > 0 else { throw AdapterError.calibration("no calibration batch has a supervised token") }
        var out: [String: Matrix] = [:]
        for b in buffers {
            let g = UnsafeBufferPointer(start: b.gradient, count: b.rows * b.cols).map { $0 / Float(used) }
            out[b.path] = Matrix(rows: b.rows, cols: b.cols, storage: g)
        }
        return out
    }
}
