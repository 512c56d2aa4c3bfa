import XCTest
@testable import Training

/// Final-answer extraction and normalisation for exact-match grading.
final class MathAnswerTests: XCTestCase {
    func testFinalAnswerMarker() {
        XCTAssertEqual(MathAnswer.extract(from: " 3 * 4 = 12 apples.\n#### 12"), "12")
        XCTAssertEqual(MathAnswer.extract(from: "#### 1,234"), "1234")
        XCTAssertEqual(MathAnswer.extract(from: "####   $5.50 dollars"), "5.5")
        XCTAssertEqual(MathAnswer.extract(from: "#### 7.0"), "7")
        XCTAssertEqual(MathAnswer.extract(from: "#### 007"), "7")
        XCTAssertEqual(MathAnswer.extract(from: "#### -3"), "-3")
        XCTAssertEqual(MathAnswer.extract(from: "#### -0.0"), "0")
        XCTAssertEqual(MathAnswer.extract(from: "#### +8"), "8")
        XCTAssertEqual(MathAnswer.extract(from: "#### .5"), "0.5")
        XCTAssertEqual(MathAnswer.extract(from: "#### 42.\nQuestion: next"), "42")
        // The last marker wins, as the last "The answer is:" in PiSSA's test_acc.py.
        XCTAssertEqual(MathAnswer.extract(from: "#### 3\nso\n#### 4"), "4")
        // A marker without a number falls back to the last number in the text.
        XCTAssertEqual(MathAnswer.extract(from: "5 + 6 = 11\n#### eleven"), "11")
    }

    func testFallbackToLastNumber() {
        XCTAssertEqual(MathAnswer.extract(from: "She has 3 + 4 = 7 apples."), "7")
        XCTAssertEqual(MathAnswer.extract(from: "The total is $1,250.00."), "1250")
        XCTAssertEqual(MathAnswer.extract(from: "From 3-4 hours"), "4", "a hyphen is not a minus sign")
        XCTAssertEqual(MathAnswer.extract(from: "counts 1,2,3"), "3", "commas not followed by three digits separate numbers")
        XCTAssertEqual(MathAnswer.extract(from: "It is -5 degrees"), "-5")
        XCTAssertNil(MathAnswer.extract(from: "no numbers here"))
        XCTAssertNil(MathAnswer.extract(from: "#### "))
        XCTAssertNil(MathAnswer.extract(from: ""))
    }

    func testNormalizeAndCompare() {
        XCTAssertEqual(MathAnswer.normalize(" 1,000 "), "1000")
        XCTAssertEqual(MathAnswer.normalize("$3.10"), "3.1")
        XCTAssertNil(MathAnswer.normalize("3 apples"))
        XCTAssertNil(MathAnswer.normalize("abc"))
        XCTAssertTrue(MathAnswer.isCorrect(generated: " 2 * 3 = 6\n#### 6", reference: "6"))
        XCTAssertTrue(MathAnswer.isCorrect(generated: "#### 1,000.0", reference: "1000"))
        XCTAssertFalse(MathAnswer.isCorrect(generated: "#### 61", reference: "6"))
        XCTAssertFalse(MathAnswer.isCorrect(generated: "I don't know", reference: "6"))
    }
}
