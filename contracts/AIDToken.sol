// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Capped} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Capped.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {IAIDToken} from "./interfaces/IAIDToken.sol";

/// @title AID token
/// @notice ERC-20 with ERC-2612 permit and a capped supply. MINTER_ROLE mints rewards for data
/// contributions; everything else in the marketplace moves existing AID.
contract AIDToken is ERC20, ERC20Permit, ERC20Capped, AccessControl, IAIDToken {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @param admin receives DEFAULT_ADMIN_ROLE and MINTER_ROLE
    /// @param supplyCap the maximum supply, in wei units
    /// @param initialSupply minted to `admin` at deployment (the treasury)
    constructor(address admin, uint256 supplyCap, uint256 initialSupply)
        ERC20("AIDoc Token", "AID")
        ERC20Permit("AIDoc Token")
        ERC20Capped(supplyCap)
    {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
        _mint(admin, initialSupply);
    }

    /// @inheritdoc IAIDToken
    function mintReward(address to, uint256 amount, bytes32 contributionId) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
        emit RewardMinted(to, amount, contributionId);
    }

    /// @inheritdoc IAIDToken
    function cap() public view override(ERC20Capped, IAIDToken) returns (uint256) {
        return super.cap();
    }

    /// @notice ERC-2612 nonce of `owner`.
    function nonces(address owner) public view override(ERC20Permit, IERC20Permit) returns (uint256) {
        return super.nonces(owner);
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Capped) {
        super._update(from, to, value);
    }
}
