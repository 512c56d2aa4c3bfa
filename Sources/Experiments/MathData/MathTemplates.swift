import Adapters
import Formats
import Foundation
import LinearAlgebra
import Model
import Tokenizer
import Training
/// The problem templates: each draws its numbers so that every step is exact integer arithmetic
/// with a non-negative result, writes 2–4 steps of `a op b = c`, and ends on the answer.
enum MathTemplates {
    typealias Make = @Sendable (inout ProblemBuilder) -> MathProblem

    static let all: [(name: String, make: Make)] = [
        ("shopping", shopping), ("typing", typing), ("ages", ages), ("marbles", marbles),
        ("discount", discount), ("marathon", marathon), ("cookies", cookies), ("train", train),
        ("savings", savings), ("garden", garden), ("wages", wages), ("recipe", recipe),
        ("tickets", tickets), ("stickers", stickers), ("reading", reading), ("classroom", classroom),
    ]

    /// "1 hour", "3 hours".
    static func count(_ n: Int, _ singular: String, _ plural: String? = nil) -> String {
        "\(n) " + (n == 1 ? singular : plural ?? singular + "s")
    }

    static func shopping(_ b: inout ProblemBuilder) -> MathProblem {
        let p = b.person()
        let item = b.pick(["notebooks", "pens", "folders", "erasers", "markers"])
        let n = b.int(2...9), price = b.int(2...15), bag = b.int(10...40)
        let items = n * price, total = items + bag
        let bill = [50, 100, 200].first { $0 > total }!
        return b.problem("shopping",
            "\(p.name) buys \(n) \(item) for $\(price) each and a backpack for $\(bag). \(p.He) pays with a $\(bill) bill. How much change does \(p.he) get?",
            ["The \(item) cost \(n) * \(price) = \(items) dollars.",
             "With the backpack \(p.he) spends \(items) + \(bag) = \(total) dollars.",
             "The change is \(bill) - \(total) = \(bill - total) dollars."],
            answer: bill - total)
    }

    static func typing(_ b: inout ProblemBuilder) -> MathProblem {
        let p = b.person()
        let rate = b.int(20...80), hours = b.int(1...4), pause = b.multiple(of: 5, 1...6)
        let minutes = hours * 60, working = minutes - pause
        return b.problem("typing",
            "\(p.name) types \(rate) words per minute. \(p.He) sits at the keyboard for \(count(hours, "hour")) and takes one break of \(pause) minutes. How many words does \(p.he) type?",
            ["\(count(hours, "hour")) is \(hours) * 60 = \(minutes) minutes.",
             "Without the break \(p.he) types for \(minutes) - \(pause) = \(working) minutes.",
             "\(p.He) types \(working) * \(rate) = \(working * rate) words."],
            answer: working * rate)
    }

    static func ages(_ b: inout ProblemBuilder) -> MathProblem {
        let ps = b.people(3)
        let k = b.int(2...4), young = b.int(3...15)
        let old = k * young
        let d = b.int(1...min(10, old - 1))
        let third = old - d, pair = old + young
        return b.problem("ages",
            "\(ps[0].name) is \(k) times as old as \(ps[1].name). \(ps[1].name) is \(young) years old. \(ps[2].name) is \(count(d, "year")) younger than \(ps[0].name). What is the sum of their ages?",
            ["\(ps[0].name) is \(k) * \(young) = \(old) years old.",
             "\(ps[2].name) is \(old) - \(d) = \(third) years old.",
             "\(ps[0].name) and \(ps[1].name) together are \(old) + \(young) = \(pair) years old.",
             "The sum of their ages is \(pair) + \(third) = \(pair + third)."],
            answer: pair + third)
    }

    static func marbles(_ b: inout ProblemBuilder) -> MathProblem {
        let ps = b.people(2)
        let parts = b.choice([2, 3, 4, 5]), share = b.int(3...20)
        let total = parts * share, kept = total - share
        let lost = b.int(1...min(12, kept - 1))
        return b.problem("marbles",
            "\(ps[0].name) has \(total) marbles. \(ps[0].He) gives 1/\(parts) of them to \(ps[1].name) and then loses \(count(lost, "marble")). How many marbles does \(ps[0].name) have left?",
            ["\(ps[0].He) gives away \(total) / \(parts) = \(share) marbles.",
             "\(ps[0].He) keeps \(total) - \(share) = \(kept) marbles.",
             "After losing some, \(ps[0].he) has \(kept) - \(lost) = \(kept - lost) marbles."],
            answer: kept - lost)
    }

    static func discount(_ b: inout ProblemBuilder) -> MathProblem {
        let p = b.person()
        let item = b.pick(["jacket", "lamp", "chair", "backpack", "pair of shoes"])
        let price = b.multiple(of: 20, 2...15), percent = b.choice([10, 20, 25, 50]), n = b.int(2...6)
        let off = price * percent / 100, sale = price - off
        let plural = item == "pair of shoes" ? "pairs of shoes" : item + "s"
        return b.problem("discount",
            "A \(item) costs $\(price). During a sale everything is \(percent)% off. \(p.name) buys \(n) \(plural) in the sale. How much does \(p.he) pay?",
            ["The discount is \(price) * \(percent) / 100 = \(off) dollars.",
             "The sale price is \(price) - \(off) = \(sale) dollars.",
             "\(p.He) pays \(n) * \(sale) = \(n * sale) dollars."],
            answer: n * sale)
    }

    static func marathon(_ b: inout ProblemBuilder) -> MathProblem {
        let n = b.int(3...6), length = b.multiple(of: 5, 16...36), pause = b.multiple(of: 5, 1...6)
        let films = n * length, breaks = n - 1, waiting = breaks * pause
        return b.problem("marathon",
            "A cinema shows \(n) movies in a row. Each movie is \(length) minutes long, and there is a \(pause) minute break between two movies. How many minutes does the whole show last?",
            ["The movies take \(n) * \(length) = \(films) minutes.",
             "There are \(n) - 1 = \(breaks) breaks.",
             "The breaks take \(breaks) * \(pause) = \(waiting) minutes.",
             "The show lasts \(films) + \(waiting) = \(films + waiting) minutes."],
            answer: films + waiting)
    }

    static func cookies(_ b: inout ProblemBuilder) -> MathProblem {
        let p = b.person()
        let trays = b.int(2...6), perTray = b.int(6...15), friends = b.int(2...8)
        let total = trays * perTray
        let eaten = total % friends == 0 ? friends : total % friends
        let rest = total - eaten
        return b.problem("cookies",
            "\(p.name) bakes \(trays) trays of cookies with \(perTray) cookies on each tray. \(p.He) eats \(eaten) of them and shares the rest equally among \(friends) friends. How many cookies does each friend get?",
            ["\(p.name) bakes \(trays) * \(perTray) = \(total) cookies.",
             "After eating some, \(total) - \(eaten) = \(rest) cookies are left.",
             "Each friend gets \(rest) / \(friends) = \(rest / friends) cookies."],
            answer: rest / friends)
    }

    static func train(_ b: inout ProblemBuilder) -> MathProblem {
        let s1 = b.multiple(of: 5, 8...24), h1 = b.int(1...5), s2 = b.multiple(of: 5, 8...24), h2 = b.int(1...5)
        let d1 = s1 * h1, d2 = s2 * h2
        return b.problem("train",
            "A train travels at \(s1) km per hour for \(count(h1, "hour")) and then at \(s2) km per hour for \(count(h2, "hour")). How many kilometers does it travel in total?",
            ["First it travels \(s1) * \(h1) = \(d1) km.",
             "Then it travels \(s2) * \(h2) = \(d2) km.",
             "In total it travels \(d1) + \(d2) = \(d1 + d2) km."],
            answer: d1 + d2)
    }

    static func savings(_ b: inout ProblemBuilder) -> MathProblem {
        let p = b.person()
        let weekly = b.int(5...30), weeks = b.int(4...12)
        let saved = weekly * weeks
        let cost = b.int(saved / 3...saved - 1)
        let thing = b.pick(["bike", "guitar", "tablet", "skateboard", "camera"])
        return b.problem("savings",
            "\(p.name) saves $\(weekly) every week. After \(weeks) weeks \(p.he) buys a \(thing) for $\(cost). How much money does \(p.he) have left?",
            ["\(p.name) saves \(weekly) * \(weeks) = \(saved) dollars.",
             "After buying the \(thing) \(p.he) has \(saved) - \(cost) = \(saved - cost) dollars left."],
            answer: saved - cost)
    }

    static func garden(_ b: inout ProblemBuilder) -> MathProblem {
        let rows = b.int(3...12), perRow = b.int(4...15)
        let plants = rows * perRow
        let failed = b.int(2...min(15, plants - 1)), yield = b.int(3...12)
        let grown = plants - failed
        let crop = b.pick(["tomato", "pepper", "bean", "pumpkin"])
        return b.problem("garden",
            "A farmer plants \(rows) rows of \(crop) plants with \(perRow) plants in each row. \(failed) of the plants do not grow. Each of the other plants gives \(yield) \(crop)s. How many \(crop)s does the farmer harvest?",
            ["The farmer plants \(rows) * \(perRow) = \(plants) plants.",
             "\(plants) - \(failed) = \(grown) plants grow.",
             "The harvest is \(grown) * \(yield) = \(grown * yield) \(crop)s."],
            answer: grown * yield)
    }

    static func wages(_ b: inout ProblemBuilder) -> MathProblem {
        let p = b.person()
        let rate = b.int(8...30), hours = b.int(3...8), days = b.int(2...6), bonus = b.multiple(of: 5, 2...20)
        let worked = hours * days, pay = worked * rate
        return b.problem("wages",
            "\(p.name) earns $\(rate) per hour. \(p.He) works \(hours) hours a day for \(days) days and gets a bonus of $\(bonus). How much does \(p.he) earn in total?",
            ["\(p.He) works \(hours) * \(days) = \(worked) hours.",
             "For those hours \(p.he) earns \(worked) * \(rate) = \(pay) dollars.",
             "With the bonus \(p.he) earns \(pay) + \(bonus) = \(pay + bonus) dollars."],
            answer: pay + bonus)
    }

    static func recipe(_ b: inout ProblemBuilder) -> MathProblem {
        let flour = b.int(2...6), milk = b.int(1...4), batch = b.choice([6, 8, 10, 12, 15, 20, 24]), times = b.int(2...8)
        let wanted = batch * times, cups = flour + milk
        return b.problem("recipe",
            "A muffin recipe uses \(count(flour, "cup")) of flour and \(count(milk, "cup")) of milk to make \(batch) muffins. How many cups of flour and milk together are needed to make \(wanted) muffins?",
            ["One batch uses \(flour) + \(milk) = \(cups) cups.",
             "\(wanted) muffins are \(wanted) / \(batch) = \(times) batches.",
             "They need \(times) * \(cups) = \(times * cups) cups."],
            answer: times * cups)
    }

    static func tickets(_ b: inout ProblemBuilder) -> MathProblem {
        let adult = b.int(10...30)
        let child = b.int(5...adult - 1), adults = b.int(1...4), children = b.int(1...6)
        let a = adults * adult, c = children * child
        let place = b.pick(["zoo", "museum", "aquarium", "theme park"])
        return b.problem("tickets",
            "Adult tickets to the \(place) cost $\(adult) and child tickets cost $\(child). A family buys \(count(adults, "adult ticket")) and \(count(children, "child ticket")). How much do they spend?",
            ["For the adults they pay \(adults) * \(adult) = \(a) dollars.",
             "For the children they pay \(children) * \(child) = \(c) dollars.",
             "They spend \(a) + \(c) = \(a + c) dollars."],
            answer: a + c)
    }

    static func stickers(_ b: inout ProblemBuilder) -> MathProblem {
        let ps = b.people(3)
        let first = b.int(5...40), more = b.int(2...20)
        let second = first + more, third = 2 * second, pair = first + second
        return b.problem("stickers",
            "\(ps[0].name) has \(first) stickers. \(ps[1].name) has \(more) more stickers than \(ps[0].name), and \(ps[2].name) has twice as many stickers as \(ps[1].name). How many stickers do they have altogether?",
            ["\(ps[1].name) has \(first) + \(more) = \(second) stickers.",
             "\(ps[2].name) has 2 * \(second) = \(third) stickers.",
             "\(ps[0].name) and \(ps[1].name) have \(first) + \(second) = \(pair) stickers.",
             "Altogether they have \(pair) + \(third) = \(pair + third) stickers."],
            answer: pair + third)
    }

    static func reading(_ b: inout ProblemBuilder) -> MathProblem {
        let p = b.person()
        let perDay = b.int(5...40), days = b.int(2...7), weekend = b.int(10...60), leftOver = b.int(10...200)
        let weekdays = perDay * days, read = weekdays + weekend, pages = read + leftOver
        return b.problem("reading",
            "A book has \(pages) pages. \(p.name) reads \(perDay) pages every day for \(days) days and then \(weekend) pages on the weekend. How many pages are left to read?",
            ["On the weekdays \(p.he) reads \(perDay) * \(days) = \(weekdays) pages.",
             "With the weekend \(p.he) has read \(weekdays) + \(weekend) = \(read) pages.",
             "There are \(pages) - \(read) = \(leftOver) pages left."],
            answer: leftOver)
    }

    static func classroom(_ b: inout ProblemBuilder) -> MathProblem {
        let students = b.multiple(of: 20, 1...10), percent = b.multiple(of: 5, 2...18)
        let girls = students * percent / 100, boys = students - girls
        return b.problem("classroom",
            "There are \(students) students in a class, and \(percent)% of them are girls. How many boys are in the class?",
            ["There are \(students) * \(percent) / 100 = \(girls) girls.",
             "So there are \(students) - \(girls) = \(boys) boys."],
            answer: boys)
    }
}
