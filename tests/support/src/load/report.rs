//! What a load run found.

use std::time::Duration;

/// What went wrong, by kind; `first` keeps the first messages.
#[derive(Debug, Default, Clone)]
pub struct Violations {
    /// An event of another request or connection: GotConn's local address is not the socket the
    /// server read the request on, a connection mapped to two server connections, a
    /// ConnectionClosed/PutIdleConn naming another connection.
    pub wrong_request: u64,
    /// An event that should have come and didn't.
    pub lost: u64,
    /// An event that came more than once.
    pub duplicated: u64,
    /// A Start without its Done (or the other way round), or a request that didn't end once.
    pub unpaired: u64,
    /// Events out of order in a request, or exchanges overlapping on a connection, or a
    /// connection's first exchange marked reused (or a later one not).
    pub misordered: u64,
    /// An event delivered after one stamped later: the request's events ran backwards.
    pub backwards: u64,
    /// An event that has no business in this run (an error on loopback, a request failing...).
    pub unexpected: u64,
    /// Events delivered after the request ended and was checked.
    pub late: u64,
    /// The first violations (20 at most), described.
    pub first: Vec<String>,
}

impl Violations {
    /// All violations, of every kind.
    pub fn total(&self) -> u64 {
        self.wrong_request
            + self.lost
            + self.duplicated
            + self.unpaired
            + self.misordered
            + self.backwards
            + self.unexpected
            + self.late
    }

    pub(crate) fn add(&mut self, kind: fn(&mut Violations) -> &mut u64, msg: String) {
        *kind(self) += 1;
        if self.first.len() < 20 {
            self.first.push(msg);
        }
    }
}

/// The outcome of a load run.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    /// Requests checked.
    pub requests: u64,
    /// Events checked.
    pub events: u64,
    /// Connections the server accepted.
    pub server_conns: u64,
    /// Connections that served at least one request.
    pub serving_conns: u64,
    /// Requests on a connection dialled for them.
    pub fresh: u64,
    /// Requests on a connection that served others before.
    pub reused: u64,
    /// Requests served by a connection another request dialled, its first exchange.
    pub served_by_other_dial: u64,
    /// Requests whose own dial went on in the background while another connection served them.
    pub dialled_for_others: u64,
    /// Dials whose request ended first: they reported themselves left to the pool (canceled,
    /// for their request) and finished in the background.
    pub left_to_pool: u64,
    /// Requests that asked the server to close the connection.
    pub closes: u64,
    /// `ConnectionClosed` events the requests got.
    pub connection_closed_events: u64,
    /// How long the run took.
    pub elapsed: Duration,
    /// What went wrong.
    pub violations: Violations,
}

impl LoadReport {
    /// Checks a run of `requests` that nothing sabotaged: no violation, every request done, and
    /// each on a fresh connection, a reused one, or one another request dialled.
    #[track_caller]
    pub fn assert_clean(&self, requests: u64) {
        assert_eq!(self.violations.total(), 0, "{self}");
        assert_eq!(self.requests, requests);
        assert_eq!(
            self.fresh + self.reused + self.served_by_other_dial,
            requests
        );
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = &self.violations;
        writeln!(
            f,
            "{} requests, {} events, {} connections accepted by the server ({} of them served requests), in {:.2?} ({:.0} req/s)",
            self.requests,
            self.events,
            self.server_conns,
            self.serving_conns,
            self.elapsed,
            self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
        )?;
        writeln!(
            f,
            "  fresh {}, reused {}, served by another request's dial {}, dialled for others {}, left to the pool {}, close=1 {}, ConnectionClosed {}",
            self.fresh,
            self.reused,
            self.served_by_other_dial,
            self.dialled_for_others,
            self.left_to_pool,
            self.closes,
            self.connection_closed_events
        )?;
        write!(
            f,
            "  violations: wrong request {}, lost {}, duplicated {}, unpaired {}, misordered {}, backwards {}, unexpected {}, late {} (total {})",
            v.wrong_request, v.lost, v.duplicated, v.unpaired, v.misordered, v.backwards, v.unexpected, v.late, v.total()
        )?;
        for m in &v.first {
            write!(f, "\n    {m}")?;
        }
        Ok(())
    }
}
