//! Paging, shared by every List operation (SPEC section 1).

use serde::Serialize;

use crate::error::{Error, Result};
use crate::store::{Keystore, Record, Scan};

/// A validated page request: `PageNumber` >= 1, `PageSize` 1..=100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    page_number: u32,
    page_size: u32,
}

impl Default for Paging {
    /// Page 1 of 10.
    fn default() -> Self {
        Self {
            page_number: 1,
            page_size: 10,
        }
    }
}

impl Paging {
    /// The largest `PageSize`.
    pub const MAX_PAGE_SIZE: u32 = 100;

    /// A page request.
    ///
    /// # Errors
    /// `InvalidParameter` naming `PageNumber` or `PageSize` when out of range.
    pub fn new(page_number: u32, page_size: u32) -> Result<Self> {
        if page_number < 1 {
            return Err(Error::invalid(
                "PageNumber",
                "must be an integer of at least 1",
            ));
        }
        if !(1..=Self::MAX_PAGE_SIZE).contains(&page_size) {
            return Err(Error::invalid(
                "PageSize",
                "must be an integer from 1 to 100",
            ));
        }
        Ok(Self {
            page_number,
            page_size,
        })
    }

    /// Parses the wire parameters; an absent or empty one takes its default.
    ///
    /// # Errors
    /// `InvalidParameter` for anything but a plain decimal integer in range.
    pub fn from_params(page_number: Option<&str>, page_size: Option<&str>) -> Result<Self> {
        let number = match page_number.filter(|s| !s.is_empty()) {
            Some(s) => parse_u32(s)
                .ok_or_else(|| Error::invalid("PageNumber", "must be an integer of at least 1"))?,
            None => 1,
        };
        let size = match page_size.filter(|s| !s.is_empty()) {
            Some(s) => parse_u32(s)
                .ok_or_else(|| Error::invalid("PageSize", "must be an integer from 1 to 100"))?,
            None => 10,
        };
        Self::new(number, size)
    }

    /// The page number, from 1.
    pub fn page_number(self) -> u32 {
        self.page_number
    }

    /// The page size.
    pub fn page_size(self) -> u32 {
        self.page_size
    }

    /// How many items come before this page.
    pub fn offset(self) -> usize {
        (self.page_number as usize - 1).saturating_mul(self.page_size as usize)
    }

    /// Cuts this page from a full, ordered list.
    pub fn slice<T>(self, items: Vec<T>) -> Page<T> {
        let total_count = items.len() as u64;
        let items = items
            .into_iter()
            .skip(self.offset())
            .take(self.page_size as usize)
            .collect();
        self.page(items, total_count)
    }

    /// A page of `items`, of a list `total_count` long.
    pub fn page<T>(self, items: Vec<T>, total_count: u64) -> Page<T> {
        Page {
            items,
            total_count,
            page_number: self.page_number,
            page_size: self.page_size,
        }
    }

    /// Reads this page of the records in `ns` whose ids start with `prefix`,
    /// in id order, without reading the records before the page's start
    /// beyond skipping them.
    pub(crate) fn scan(self, store: &dyn Keystore, ns: &str, prefix: &[u8]) -> Result<Vec<Record>> {
        Ok(store.scan(
            ns,
            Scan {
                prefix,
                after: None,
                skip: self.offset(),
                limit: self.page_size as usize,
            },
        )?)
    }
}

/// Plain decimal digits only: no sign, no spaces, no exponent.
pub(crate) fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// One page of a List operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    /// The page's items, in creation order.
    pub items: Vec<T>,
    /// How many items the whole list has.
    pub total_count: u64,
    /// The page number asked for.
    pub page_number: u32,
    /// The page size asked for.
    pub page_size: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(Paging::from_params(None, None), Ok(Paging::default()));
        assert_eq!(
            Paging::from_params(Some(""), Some("")),
            Ok(Paging::default())
        );
        assert_eq!(
            Paging::from_params(Some("3"), Some("100")),
            Paging::new(3, 100)
        );
        assert!(Paging::from_params(Some("1"), Some("1")).is_ok());
        for (n, s, param) in [
            ("0", "10", "PageNumber"),
            ("-1", "10", "PageNumber"),
            ("x", "10", "PageNumber"),
            ("1.0", "10", "PageNumber"),
            (" 1", "10", "PageNumber"),
            ("+1", "10", "PageNumber"),
            ("99999999999", "10", "PageNumber"),
            ("1", "0", "PageSize"),
            ("1", "101", "PageSize"),
            ("1", "-5", "PageSize"),
            ("1", "ten", "PageSize"),
        ] {
            let e = Paging::from_params(Some(n), Some(s)).unwrap_err();
            assert_eq!(e.code(), "InvalidParameter", "{n} {s}");
            assert!(e.to_string().contains(param), "{n} {s}: {e}");
        }
    }

    #[test]
    fn slice_cuts_pages_and_past_the_end_is_empty() {
        let items: Vec<u32> = (0..25).collect();
        let p = Paging::new(3, 10).unwrap().slice(items.clone());
        assert_eq!(p.items, (20..25).collect::<Vec<_>>());
        assert_eq!(p.total_count, 25);
        let past = Paging::new(4, 10).unwrap().slice(items);
        assert!(past.items.is_empty());
        assert_eq!(past.total_count, 25);
        let huge = Paging::new(u32::MAX, 100).unwrap().slice(vec![1]);
        assert!(huge.items.is_empty());
    }
}
