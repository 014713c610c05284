// Package action carries out a migration plan (design §13): its
// subpackages pack a plan's files into one archive and restore it
// (action/pack), and move the live applications themselves
// (action/migrate). It sits downstream of the planner: it may import
// planner and the store, and nothing upstream imports it.
package action
