extension Array where Element == Double {
    /// The middle value once sorted, the upper of the two middles for an even count: how the
    /// benchmarks report a median time (nan when empty).
    public var upperMedian: Double {
        guard !isEmpty else { return .nan }
        return sorted()[count / 2]
    }
}
