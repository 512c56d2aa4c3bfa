import Foundation
import LinearAlgebra
import XCTest

final class ParallelTests: XCTestCase {
    func testEveryIndexRunsExactlyOnce() throws {
        final class Counts: @unchecked Sendable {
            let lock = NSLock()
            var seen = [Int](repeating: 0, count: 100)
        }
        let counts = Counts()
        try Parallel.forEach(100, lanes: 2) { i in
            counts.lock.lock(); counts.seen[i] += 1; counts.lock.unlock()
        }
        XCTAssertEqual(counts.seen, [Int](repeating: 1, count: 100))
    }

    func testFirstErrorIsRethrown() {
        struct Boom: Error {}
        XCTAssertThrowsError(try Parallel.forEach(10, lanes: 2) { i in if i == 3 { throw Boom() } }) {
            XCTAssertTrue($0 is Boom)
        }
    }
}
