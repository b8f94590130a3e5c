/// Expression nodes of the Jinja subset.
indirect enum JinjaExpr: Sendable {
    case literal(JinjaValue)
    case name(String, JinjaPos)
    case list([JinjaExpr])
    case tuple([JinjaExpr])
    case dict([(JinjaExpr, JinjaExpr)])
    case attribute(JinjaExpr, String, JinjaPos)
    case index(JinjaExpr, JinjaExpr, JinjaPos)
    case slice(JinjaExpr, JinjaExpr?, JinjaExpr?, JinjaExpr?, JinjaPos)
    case call(JinjaExpr, [JinjaExpr], [(String, JinjaExpr)], JinjaPos)
    case filter(JinjaExpr, String, [JinjaExpr], [(String, JinjaExpr)], JinjaPos)
    case test(JinjaExpr, String, [JinjaExpr], negated: Bool, JinjaPos)
    case unary(String, JinjaExpr, JinjaPos)
    case binary(String, JinjaExpr, JinjaExpr, JinjaPos)
    case compare(JinjaExpr, [(String, JinjaExpr)], JinjaPos)
    case concat([JinjaExpr], JinjaPos)
    case conditional(then: JinjaExpr, condition: JinjaExpr, otherwise: JinjaExpr?)
}

/// Where `set` stores a value.
enum JinjaSetTarget: Sendable {
    case names([String])
    case attribute(String, String)
}

/// Statement nodes of the Jinja subset.
indirect enum JinjaNode: Sendable {
    case text(String)
    case output(JinjaExpr, JinjaPos)
    case ifChain([(JinjaExpr, [JinjaNode])], otherwise: [JinjaNode])
    case forLoop(targets: [String], iterable: JinjaExpr, filter: JinjaExpr?, body: [JinjaNode], otherwise: [JinjaNode],
                 JinjaPos)
    case set(JinjaSetTarget, JinjaExpr, JinjaPos)
    case setBlock(String, [JinjaNode])
    case macro(name: String, params: [(String, JinjaExpr?)], body: [JinjaNode])
    case breakLoop(JinjaPos)
    case continueLoop(JinjaPos)
    /// `{% generation %}` (transformers' assistant-mask marker) and similar transparent blocks.
    case block([JinjaNode])
}
