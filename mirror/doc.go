// Package mirror keeps models on a node for as long as it should: pins,
// garbage collection within a disk budget, and following publishers (a
// daemon learns of their new records over gossipsub and by asking the
// DHT, then fetches and pins what they name).
//
// Files are the storage. Roots the node fetched for itself (a pin of a
// root it did not hold, a followed publisher's model) lie in its store,
// one folder a root; gc deletes files only there. Folders a user added or
// fetched into are theirs: gc forgets them, and never touches a file.
package mirror
