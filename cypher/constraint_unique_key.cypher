// One node per (dataset, key) for a label; also the index every load and path lookup seeks on.
// Slots: constraint (its name), label, key (property: id for User/Item, name for attributes).
CREATE CONSTRAINT {{ident constraint}} IF NOT EXISTS
FOR (n:{{ident label}}) REQUIRE (n.dataset, n.{{ident key}}) IS UNIQUE
