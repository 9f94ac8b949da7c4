import Foundation
import Logging

extension RetryPolicy {
    /// The request loop the HTTP API clients share: sends until a 2xx, sleeping with backoff
    /// between attempts that `wait` (for a response) or `HTTPFailure.isTransient` (for a
    /// connection error) call worth repeating, then throws what `failure` or `unreachable` make of
    /// the last one.
    /// - Parameters:
    ///   - fetch: one attempt, its request built afresh (a streamed body is reopened).
    ///   - wait: seconds to wait before repeating after this non-2xx response; nil: do not.
    ///   - unreachable: the error for a connection failure, given the number of attempts made.
    ///   - apiResponse: the body is the API's JSON, not a file's bytes: one that visibly stops
    ///     short (`HTTPFailure.looksWhole`) is a cut connection, tried again.
    func perform(
        path: String, logger: Logger, apiResponse: Bool = true, fetch: () -> Result<RESTResponse, Error>,
        wait: (RESTResponse, _ attempt: Int) -> Double?, failure: (RESTResponse, _ attempts: Int) -> Error,
        unreachable: (Error, _ attempts: Int) -> Error
    ) throws -> RESTResponse {
        var attempt = 0
        while true {
            attempt += 1
            switch apiResponse ? HTTPFailure.judged(fetch()) : fetch() {
            case .success(let response) where (200..<300).contains(response.status):
                return response
            case .success(let response):
                guard attempt < attempts, let seconds = wait(response, attempt) else {
                    throw failure(response, attempt)
                }
                logger.warning(
                    "retrying", metadata: ["status": "\(response.status)", "attempt": "\(attempt)", "path": "\(path)"])
                Thread.sleep(forTimeInterval: seconds)
            case .failure(let error) where attempt < attempts && HTTPFailure.isTransient(error):
                logger.warning(
                    "retrying",
                    metadata: [
                        "error": "\(HTTPFailure.describe(error))", "attempt": "\(attempt)", "path": "\(path)",
                    ])
                Thread.sleep(forTimeInterval: delay(attempt))
            case .failure(let error):
                throw unreachable(error, attempt)
            }
        }
    }

    /// "cannot reach ROOT: why (after N attempts)".
    static func unreachableMessage(_ root: URL, _ error: Error, attempts: Int) -> String {
        "cannot reach \(root.absoluteString): \(HTTPFailure.describe(error))"
            + (attempts > 1 ? " (after \(attempts) attempts)" : "")
    }
}
